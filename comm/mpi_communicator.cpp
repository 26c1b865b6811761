#include "comm/mpi_communicator.h"

#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "comm/monitored_communicator.h"
#include "comm/mpi_check.h"
#include "common/error.h"

namespace hogwild {

std::string mpi_status_text(int status) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(status, text, &length) != MPI_SUCCESS)
    return cat("MPI error ", status, " (world rank ", mpi_world_rank(), ")");
  return cat(std::string(text, static_cast<size_t>(length)), " (world rank ", mpi_world_rank(),
             ")");
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
  HOGWILD_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
  HOGWILD_CHECK(provided >= MPI_THREAD_FUNNELED, "MPI gives thread level ", provided,
                ", below MPI_THREAD_FUNNELED");
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

// The watchdogs' side channel (see ProgressExchange): a duplicate of the world communicator, so
// that its messages never meet the engine's. A rank's watchdog keeps one receive posted for
// questions; a question carries the tag to answer with, fresh for every ask, so a late answer
// to an earlier ask is never taken for a new one. Runs on the watchdog thread (after the
// constructor), which is why it needs MPI_THREAD_MULTIPLE; an MPI error there cannot throw, so
// it is reported once and the exchange stops.
class MpiProgressExchange final : public ProgressExchange {
 public:
  explicit MpiProgressExchange(int world_rank) : world_rank_(world_rank) {
    HOGWILD_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
    HOGWILD_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    HOGWILD_MPI_CHECK(
        MPI_Irecv(&question_, 1, MPI_INT, MPI_ANY_SOURCE, kQuestionTag, comm_, &listening_));
  }

  ~MpiProgressExchange() override {
    if (listening_ != MPI_REQUEST_NULL) {
      MPI_Cancel(&listening_);
      MPI_Wait(&listening_, MPI_STATUS_IGNORE);
    }
    // Sends nobody took (the asking rank is gone): MPI drops them, but may read their buffers
    // until MPI_Finalize, so those live on until the process ends.
    static std::vector<Send> orphans;
    for (Send& send : sends_) {
      int done = 0;
      MPI_Test(&send.request, &done, MPI_STATUS_IGNORE);
      if (!done) {
        MPI_Request_free(&send.request);
        orphans.push_back(std::move(send));
      }
    }
    MPI_Comm_free(&comm_);
  }

  void serve(const ProgressReport& mine) override {
    while (!broken_) {
      int arrived = 0;
      MPI_Status status;
      if (!ok(MPI_Test(&listening_, &arrived, &status), "MPI_Test") || !arrived) break;
      const int answer_tag = question_;
      Send answer = Send::of(mine);
      if (!ok(MPI_Isend(answer.bytes.data(), sizeof(ProgressReport), MPI_BYTE, status.MPI_SOURCE,
                        answer_tag, comm_, &answer.request),
              "MPI_Isend"))
        break;
      sends_.push_back(std::move(answer));
      ok(MPI_Irecv(&question_, 1, MPI_INT, MPI_ANY_SOURCE, kQuestionTag, comm_, &listening_),
         "MPI_Irecv");
    }
    forget_sent();
  }

  std::vector<std::optional<ProgressReport>> ask(
      const std::vector<int>& world_ranks, double seconds,
      const std::function<ProgressReport()>& mine) override {
    if (broken_) return {};
    const size_t n = world_ranks.size();
    std::vector<ProgressReport> answers(n);
    std::vector<MPI_Request> receives(n, MPI_REQUEST_NULL);
    std::vector<bool> answered(n, false);
    answer_tag_ = answer_tag_ >= kLastAnswerTag ? kFirstAnswerTag : answer_tag_ + 1;
    for (size_t i = 0; i < n; ++i) {
      Send question = Send::of(answer_tag_);
      if (!ok(MPI_Irecv(&answers[i], sizeof(ProgressReport), MPI_BYTE, world_ranks[i], answer_tag_,
                        comm_, &receives[i]),
              "MPI_Irecv") ||
          !ok(MPI_Isend(question.bytes.data(), 1, MPI_INT, world_ranks[i], kQuestionTag, comm_,
                        &question.request),
              "MPI_Isend"))
        break;
      sends_.push_back(std::move(question));
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    size_t pending = n;
    while (!broken_ && pending > 0 && std::chrono::steady_clock::now() < deadline) {
      serve(mine());  // two ranks may ask each other at once
      for (size_t i = 0; i < n; ++i) {
        if (answered[i] || receives[i] == MPI_REQUEST_NULL) continue;
        int done = 0;
        if (!ok(MPI_Test(&receives[i], &done, MPI_STATUS_IGNORE), "MPI_Test")) break;
        if (done) {
          answered[i] = true;
          --pending;
        }
      }
      if (pending > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // The caller may go on (the collective ended meanwhile): take back the open receives.
    for (size_t i = 0; i < n; ++i) {
      if (answered[i] || receives[i] == MPI_REQUEST_NULL) continue;
      MPI_Cancel(&receives[i]);
      MPI_Wait(&receives[i], MPI_STATUS_IGNORE);
    }
    if (broken_) return {};
    std::vector<std::optional<ProgressReport>> result(n);
    for (size_t i = 0; i < n; ++i)
      if (answered[i]) result[i] = answers[i];
    return result;
  }

 private:
  static constexpr int kQuestionTag = 7100;
  static constexpr int kFirstAnswerTag = 7101, kLastAnswerTag = 32000;  // MPI allows >= 32767
  struct Send {
    MPI_Request request;
    std::vector<uint8_t> bytes;  // what is sent: an answer or a question's tag
    template <typename T>
    static Send of(const T& value) {
      Send send{MPI_REQUEST_NULL, std::vector<uint8_t>(sizeof(T))};
      std::memcpy(send.bytes.data(), &value, sizeof(T));
      return send;
    }
  };

  bool ok(int status, const char* call) {
    if (status == MPI_SUCCESS) return true;
    if (!broken_) {
      char text[MPI_MAX_ERROR_STRING] = {};
      int length = 0;
      MPI_Error_string(status, text, &length);
      std::fprintf(stderr,
                   "hogwild: warning: rank %d: the watchdog cannot reach the other ranks (%s: "
                   "%s); it can still end a stuck job, without naming the stuck rank\n",
                   world_rank_, call, text);
    }
    broken_ = true;
    return false;
  }

  void forget_sent() {
    std::erase_if(sends_, [](Send& send) {
      int done = 0;
      MPI_Test(&send.request, &done, MPI_STATUS_IGNORE);
      return done != 0;
    });
  }

  int world_rank_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Request listening_ = MPI_REQUEST_NULL;
  int question_ = 0;  // the tag the asking rank wants its answer under
  int answer_tag_ = kFirstAnswerTag;
  std::vector<Send> sends_;
  bool broken_ = false;
};

}  // namespace

std::unique_ptr<Communicator> make_world_communicator() {
  int initialized = 0;
  HOGWILD_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized || mpi_world_size() == 1) return make_local_communicator();
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world");
}

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
  auto world_comm = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world");
  auto tensor_comm = std::make_unique<MpiCommunicator>(tensor, cat("tensor group ", grid.group));
  auto workers_comm =
      std::make_unique<MpiCommunicator>(workers, cat("worker axis, slice ", grid.tensor_rank));

  // One watchdog for the three axes. It can ask the other ranks only if MPI lets its thread
  // call MPI while the main thread waits in a collective.
  int thread_level = MPI_THREAD_SINGLE;
  HOGWILD_MPI_CHECK(MPI_Query_thread(&thread_level));
  std::unique_ptr<ProgressExchange> exchange;
  if (timeout_seconds > 0 && thread_level == MPI_THREAD_MULTIPLE)
    exchange = std::make_unique<MpiProgressExchange>(grid.world_rank);
  auto watchdog = std::make_shared<Watchdog>(grid.world_rank, timeout_seconds, std::move(exchange));
  auto members = [&](Communicator& comm) {  // the axis's world ranks, in axis-rank order
    std::vector<int> ranks(static_cast<size_t>(comm.size()));
    comm.all_gather(&grid.world_rank, ranks.data(), sizeof(int));
    return ranks;
  };
  const int world_axis = watchdog->add_axis("world", members(*world_comm));
  const int tensor_axis = watchdog->add_axis("tensor", members(*tensor_comm));
  const int workers_axis = watchdog->add_axis("workers", members(*workers_comm));
  watchdog->start();
  grid.watchdog = watchdog;
  grid.tensor_axis = tensor_axis;
  grid.workers_axis = workers_axis;
  grid.world = std::make_unique<MonitoredCommunicator>(std::move(world_comm), watchdog, world_axis);
  grid.tensor =
      std::make_unique<MonitoredCommunicator>(std::move(tensor_comm), watchdog, tensor_axis);
  grid.workers =
      std::make_unique<MonitoredCommunicator>(std::move(workers_comm), watchdog, workers_axis);
  return grid;
}

void add_device_communicators(RankGrid& grid, const DeviceCommunicatorFactory& make) {
  // Every rank makes the same axes in the same order (each make() is collective on its axis).
  if (grid.tensor_parallel > 1)
    grid.device_tensor = std::make_unique<MonitoredCommunicator>(make(*grid.tensor), grid.watchdog,
                                                                 grid.tensor_axis);
  if (grid.worker_groups > 1)
    grid.device_workers = std::make_unique<MonitoredCommunicator>(make(*grid.workers),
                                                                  grid.watchdog, grid.workers_axis);
}

}  // namespace hogwild
