# Text rules of the scheduler (step ends, prompt text) and the grader of answers (grading.h);
# no model, no dependencies.
add_library(hogwild_text_rules STATIC ${CMAKE_CURRENT_LIST_DIR}/text_rules.cpp
  ${CMAKE_CURRENT_LIST_DIR}/grading.cpp)
target_include_directories(hogwild_text_rules PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(hogwild_text_rules PUBLIC hogwild_common PRIVATE hogwild_warnings)
