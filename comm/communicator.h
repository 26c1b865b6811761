// The seam between the engine and communication (docs/design.md §6): a communicator over a group of
// ranks with the few collectives the engine needs. MpiCommunicator works on host buffers (the
// CPU backend, CI); NcclCommunicator on device buffers (the CUDA backend). A group of one rank
// is the same code with trivial collectives.
//
// Results are identical on every rank and independent of the collective algorithm: all_reduce
// sums the contributions in rank order, so a distributed run reproduces a single process's
// rounding exactly where the math allows.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace hogwild {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string describe() const = 0;  // "tensor group 1 of world 4", for messages

  // data[i] = sum over ranks (in rank order) of data[i]; `count` floats on every rank.
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  // recv = concatenation over ranks of each rank's `bytes` at send (recv holds size()*bytes).
  virtual void all_gather(const void* send, void* recv, size_t bytes) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
};

// A communicator of one rank (no MPI needed).
std::unique_ptr<Communicator> make_local_communicator();

}  // namespace hogwild
