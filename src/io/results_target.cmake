# The results writer (HDF5 + text transcript); included from src/io/CMakeLists.txt.
# The C library only: HDF5's C++ library opens HDF5 from its static constructors, before main,
# which registers HDF5's exit clean-up before results.cpp can turn it off (H5dont_atexit); after
# a full disk that clean-up loops over the file it cannot close and prints to stderr.
find_package(HDF5 REQUIRED COMPONENTS C)
add_library(hogwild_io_results STATIC ${CMAKE_CURRENT_LIST_DIR}/results.cpp)
target_include_directories(hogwild_io_results PUBLIC ${PROJECT_SOURCE_DIR}/src)
target_include_directories(hogwild_io_results SYSTEM PRIVATE ${HDF5_INCLUDE_DIRS})
target_link_libraries(hogwild_io_results PUBLIC hogwild_common
                      PRIVATE ${HDF5_C_LIBRARIES} hogwild_warnings)
# The one source of the version string: project(VERSION) in the top-level CMakeLists.txt.
target_compile_definitions(hogwild_io_results PRIVATE HOGWILD_VERSION="${PROJECT_VERSION}")
