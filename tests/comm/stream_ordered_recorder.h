// A host communicator (MPI, local) presented to the engine as a stream-ordered one, as NCCL is:
// the code paths the CUDA backend takes with NCCL run under mpirun on the CPU, with real
// exchanges between processes. It keeps NCCL's contract where a host test can see it:
// collectives between group_start() and group_end() are deferred to group_end() (as NCCL launches
// them), so code that reads a group's results early or reuses a buffer inside a group gets wrong
// data; and it counts calls, groups and waits, so a test can check that the engine never waits
// inside a collective path and that the caller's wait() comes where the host reads the results.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace hogwild::testing {

class StreamOrderedRecorder final : public Communicator {
 public:
  explicit StreamOrderedRecorder(Communicator& inner) : inner_(inner) {}

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string describe() const override { return "stream-ordered " + inner_.describe(); }
  bool stream_ordered() const override { return true; }

  void all_reduce_sum(float* data, size_t count) override {
    ++all_reduces;
    queue([=, this] { inner_.all_reduce_sum(data, count); });
  }
  void all_gather(const void* send, void* recv, size_t bytes) override {
    ++all_gathers;
    gathered_bytes.push_back(bytes);
    queue([=, this] { inner_.all_gather(send, recv, bytes); });
  }
  void broadcast(void* data, size_t bytes, int root) override {
    ++broadcasts;
    queue([=, this] { inner_.broadcast(data, bytes, root); });
  }
  void barrier() override {
    EXPECT_FALSE(grouped_) << "barrier inside a group";
    inner_.barrier();
  }
  void group_start() override {
    EXPECT_FALSE(grouped_) << "groups do not nest";
    grouped_ = true;
  }
  void group_end() override {
    EXPECT_TRUE(grouped_) << "group_end without group_start";
    grouped_ = false;
    ++groups;
    for (auto& call : deferred_) call();
    deferred_.clear();
  }
  bool poll() override {
    EXPECT_FALSE(grouped_) << "poll inside a group";
    ++polls;
    return true;
  }
  void wait() override {
    EXPECT_FALSE(grouped_) << "wait inside a group: NCCL would never finish it";
    ++waits;
    queued = 0;
  }

  int all_reduces = 0, all_gathers = 0, broadcasts = 0, groups = 0, polls = 0, waits = 0;
  int queued = 0;  // collectives since the last wait()
  std::vector<size_t> gathered_bytes;

 private:
  void queue(std::function<void()> call) {
    ++queued;
    if (grouped_)
      deferred_.push_back(std::move(call));
    else
      call();
  }

  Communicator& inner_;
  bool grouped_ = false;
  std::vector<std::function<void()>> deferred_;
};

}  // namespace hogwild::testing
