// OpenBLAS inside the CPU backend's pool: every call runs inline on the pool thread that makes it.
#pragma once

#include <cblas.h>
#include <omp.h>

namespace hogwild::cpu {

// OpenBLAS's OpenMP build sizes its own threads from omp_get_max_threads() of the calling thread,
// so each of our threads sets its own to 1 once before its first BLAS call: OpenBLAS then runs
// inline, inside our pool, and no second set of threads competes for the cores.
inline void make_blas_single_threaded() {
  thread_local bool done = false;
  if (done) return;
  omp_set_num_threads(1);
  openblas_set_num_threads(1);
  done = true;
}

}  // namespace hogwild::cpu
