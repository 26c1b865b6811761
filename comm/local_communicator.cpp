#include <cstring>

#include "comm/communicator.h"

namespace hogwild {
namespace {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  void all_reduce_sum(float*, size_t) override {}
  void all_gather(const void* send, void* recv, size_t bytes) override {
    if (send != recv && bytes > 0) std::memmove(recv, send, bytes);
  }
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}

}  // namespace hogwild
