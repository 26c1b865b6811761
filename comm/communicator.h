// The seam between the engine and communication (docs/design.md §6): a communicator over a group of
// ranks with the few collectives the engine needs. MpiCommunicator works on host buffers (the
// CPU backend, CI); NcclCommunicator on device buffers (the CUDA backend). A group of one rank
// is the same code with trivial collectives.
//
// Results are identical on every rank and independent of the collective algorithm: all_reduce
// sums the contributions in rank order, so a distributed run reproduces a single process's
// rounding exactly where the math allows (MPI; NCCL's sums are deterministic for a fixed grid).
//
// Two kinds of communicator, one interface: host ones (MPI, local) complete every collective
// before returning; stream-ordered ones (NCCL) take the CUDA backend's device buffers and only
// queue the collective on its stream, so the ops queued after it see the data and the host sees
// it after wait(). Code written for the second kind (queue, group, then wait where the host reads)
// runs unchanged on the first, where group_start/group_end/wait/poll are trivial: the tests run
// the NCCL paths of the engine with MPI (tests/comm/test_worker_exchange.cpp).
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
  // Every rank has reached it; a stream-ordered communicator also waits for its queued work.
  virtual void barrier() = 0;

  // True when the collectives take device buffers and are queued on a stream (see above).
  virtual bool stream_ordered() const { return false; }
  // Collectives called between group_start() and group_end() are launched together at
  // group_end() (ncclGroupStart/End): their buffers must stay distinct and unread until then.
  // Host communicators run each at once. Groups do not nest.
  virtual void group_start() {}
  virtual void group_end() {}
  // Without blocking: true when every collective queued so far has completed. Throws
  // hogwild::Error naming the axis (after aborting the communicator, which releases its peers)
  // when the library reports an asynchronous error, e.g. a peer that died.
  virtual bool poll() { return true; }
  // Blocks until every collective queued so far has completed, polling for asynchronous errors
  // meanwhile (as nccl-tests' testStreamSynchronize does), so that a dead peer is an error, not
  // a hang. Called where the host reads results (the step's end).
  virtual void wait() {}
};

// A communicator of one rank (no MPI needed).
std::unique_ptr<Communicator> make_local_communicator();

}  // namespace hogwild
