#include "comm/mpi_communicator.h"

#include <mpi.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "comm/monitored_communicator.h"
#include "common/error.h"

// Every MPI call is checked; a failure names the host, the world rank, the call and file:line.
#define HOGWILD_MPI_CHECK(call)                                        \
  do {                                                                 \
    const int hogwild_status_ = (call);                                \
    if (hogwild_status_ != MPI_SUCCESS)                                \
      ::hogwild::mpi_fail(#call, hogwild_status_, __FILE__, __LINE__); \
  } while (0)

namespace hogwild {

[[noreturn]] void mpi_fail(const char* call, int status, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(status, text, &length);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  fail(host, " rank ", mpi_world_rank(), ": ", file, ":", line, ": ", call, " failed: ", text);
}

bool launched_by_mpi() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(variable) != nullptr) return true;
  return false;
}

void mpi_initialize(int* argc, char*** argv) {
  int initialized = 0;
  HOGWILD_MPI_CHECK(MPI_Initialized(&initialized));
  if (initialized) return;
  int provided = 0;
  HOGWILD_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  HOGWILD_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
}

void mpi_finalize() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

int mpi_world_rank() {
  int initialized = 0, rank = 0;
  MPI_Initialized(&initialized);
  if (initialized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int mpi_world_size() {
  int initialized = 0, size = 1;
  MPI_Initialized(&initialized);
  if (initialized) MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

void mpi_abort_all(const std::string& message, int code) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized && mpi_world_size() > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

namespace {

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, std::string name) : comm_(comm), name_(std::move(name)) {
    HOGWILD_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    HOGWILD_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    HOGWILD_MPI_CHECK(MPI_Comm_size(comm_, &size_));
  }
  ~MpiCommunicator() override {
    if (comm_ != MPI_COMM_WORLD) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override { return cat(name_, " (rank ", rank_, " of ", size_, ")"); }

  // Gather everything, then add in rank order: the same sum, bit for bit, on every rank and for
  // every MPI algorithm (MPI_Allreduce may add in any order).
  void all_reduce_sum(float* data, size_t count) override {
    if (size_ == 1 || count == 0) return;
    gathered_.resize(count * static_cast<size_t>(size_));
    HOGWILD_MPI_CHECK(MPI_Allgather(data, static_cast<int>(count), MPI_FLOAT, gathered_.data(),
                                    static_cast<int>(count), MPI_FLOAT, comm_));
    for (size_t i = 0; i < count; ++i) {
      float sum = gathered_[i];
      for (int r = 1; r < size_; ++r) sum += gathered_[static_cast<size_t>(r) * count + i];
      data[i] = sum;
    }
  }

  void all_gather(const void* send, void* recv, size_t bytes) override {
    if (size_ == 1) {
      if (send != recv && bytes > 0) std::memmove(recv, send, bytes);
      return;
    }
    HOGWILD_CHECK(bytes <= static_cast<size_t>(INT32_MAX), "all_gather of ", bytes,
                  " bytes is too large");
    HOGWILD_MPI_CHECK(MPI_Allgather(send, static_cast<int>(bytes), MPI_BYTE, recv,
                                    static_cast<int>(bytes), MPI_BYTE, comm_));
  }

  void broadcast(void* data, size_t bytes, int root) override {
    if (size_ == 1) return;
    HOGWILD_MPI_CHECK(MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, root, comm_));
  }

  void barrier() override { HOGWILD_MPI_CHECK(MPI_Barrier(comm_)); }

 private:
  MPI_Comm comm_;
  std::string name_;
  int rank_ = 0, size_ = 1;
  std::vector<float> gathered_;
};

}  // namespace

RankGrid make_rank_grid(int tensor_parallel, int worker_groups, double timeout_seconds) {
  RankGrid grid;
  grid.world_rank = mpi_world_rank();
  grid.world_size = mpi_world_size();
  HOGWILD_CHECK(tensor_parallel >= 1 && worker_groups >= 1, "parallel.tensor and ",
                "parallel.worker_groups must be >= 1");
  HOGWILD_CHECK(tensor_parallel * worker_groups == grid.world_size, "parallel grid ", worker_groups,
                " worker groups x ", tensor_parallel, " tensor = ", worker_groups * tensor_parallel,
                " ranks, but the job has ", grid.world_size,
                " (set parallel.tensor / parallel.worker_groups, or mpirun -np)");
  grid.tensor_parallel = tensor_parallel;
  grid.worker_groups = worker_groups;
  grid.tensor_rank = grid.world_rank % tensor_parallel;
  grid.group = grid.world_rank / tensor_parallel;

  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized || grid.world_size == 1) {
    grid.world = make_local_communicator();
    grid.tensor = make_local_communicator();
    grid.workers = make_local_communicator();
    return grid;
  }
  MPI_Comm local = MPI_COMM_NULL, tensor = MPI_COMM_NULL, workers = MPI_COMM_NULL;
  HOGWILD_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, grid.world_rank,
                                        MPI_INFO_NULL, &local));
  HOGWILD_MPI_CHECK(MPI_Comm_rank(local, &grid.local_rank));
  HOGWILD_MPI_CHECK(MPI_Comm_free(&local));
  HOGWILD_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, grid.group, grid.tensor_rank, &tensor));
  HOGWILD_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, grid.tensor_rank, grid.group, &workers));
  grid.world = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world");
  grid.tensor = std::make_unique<MonitoredCommunicator>(
      std::make_unique<MpiCommunicator>(tensor, cat("tensor group ", grid.group)), "tensor",
      grid.world_rank, timeout_seconds);
  grid.workers = std::make_unique<MonitoredCommunicator>(
      std::make_unique<MpiCommunicator>(workers, cat("worker axis, slice ", grid.tensor_rank)),
      "workers", grid.world_rank, timeout_seconds);
  return grid;
}

}  // namespace hogwild
