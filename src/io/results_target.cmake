# The results writer (HDF5 + text transcript); included from src/io/CMakeLists.txt.
find_package(HDF5 REQUIRED COMPONENTS C CXX)
add_library(hogwild_io_results STATIC ${CMAKE_CURRENT_LIST_DIR}/results.cpp)
target_include_directories(hogwild_io_results PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_include_directories(hogwild_io_results SYSTEM PRIVATE ${HDF5_INCLUDE_DIRS})
target_link_libraries(hogwild_io_results PUBLIC hogwild_common
                      PRIVATE ${HDF5_CXX_LIBRARIES} ${HDF5_LIBRARIES} hogwild_warnings)
# The one source of the version string: project(VERSION) in the top-level CMakeLists.txt.
target_compile_definitions(hogwild_io_results PRIVATE HOGWILD_VERSION="${PROJECT_VERSION}")
