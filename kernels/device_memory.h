// Free memory of the device a backend computes on, in every build: the engine's memory plan
// checks a CUDA run against it (docs/design.md §7) without including the CUDA headers.
#pragma once

#include <cstddef>
#include <string>

namespace hogwild {

// Bytes free now on CUDA device `device` (cudaMemGetInfo) for backend "cuda"; 0 (unknown) for
// host backends ("cpu": their tensors are host memory) and in builds without CUDA.
size_t device_free_memory(const std::string& backend, int device);

// The CUDA backend's cuBLAS workspace, allocated with the backend (kernels/cuda/cuda_backend.cpp
// keeps its own constant: change both).
inline constexpr size_t kCudaCublasWorkspaceBytes = size_t{32} << 20;

}  // namespace hogwild
