// NCCL communicator for the CUDA backend: the same collectives on device buffers, queued on the
// backend's stream (stream_ordered(): no host synchronisation per collective). Bootstrapped over
// an MPI axis communicator (the axis leader makes the ncclUniqueId, the axis broadcasts it), one
// NCCL communicator per axis (docs/design.md §6). NCCL's sums are deterministic run to run for a
// fixed grid, but not the rank-order sum of the MPI path.
//
// wait() polls, while the stream drains, the asynchronous errors of every NCCL communicator
// queued on the same stream (the tensor and worker axes share the backend's), as nccl-tests'
// testStreamSynchronize does: a peer that died is reported as an error naming the axis whose
// communicator saw it, and that communicator is aborted so its other peers are released.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <memory>
#include <string>

#include "comm/communicator.h"
#include "common/check.h"

namespace hogwild {

// ncclGetErrorString of `status` and NCCL's last error message, when it has one.
std::string nccl_status_text(ncclResult_t status);

// `axis` is the MPI communicator of the same ranks (used once, for the unique id); `device` the
// CUDA device and `stream` the backend's stream (kernels/cuda/cuda_backend.h: cuda_stream).
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& axis, int device,
                                                     cudaStream_t stream);

}  // namespace hogwild

#define HOGWILD_NCCL_CHECK(call) \
  HOGWILD_STATUS_CHECK(call, ncclSuccess, ::hogwild::nccl_status_text)
