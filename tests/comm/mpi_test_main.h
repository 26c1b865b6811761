// main() for GoogleTest programs that run under mpirun: MPI is initialised around the tests and
// only rank 0 prints gtest's report (every rank still runs and asserts; the process exit code
// of any failing rank fails the job).
#pragma once

#include <gtest/gtest.h>

#include "comm/mpi_communicator.h"

#define HOGWILD_MPI_TEST_MAIN()                                          \
  int main(int argc, char** argv) {                                      \
    ::testing::InitGoogleTest(&argc, argv);                              \
    ::hogwild::mpi_initialize(&argc, &argv);                             \
    if (::hogwild::mpi_world_rank() != 0) {                              \
      auto& listeners = ::testing::UnitTest::GetInstance()->listeners(); \
      delete listeners.Release(listeners.default_result_printer());      \
    }                                                                    \
    const int result = RUN_ALL_TESTS();                                  \
    ::hogwild::mpi_finalize();                                           \
    return result;                                                       \
  }
