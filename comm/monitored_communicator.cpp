#include "comm/monitored_communicator.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "common/error.h"

namespace hogwild {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr auto kPeriod = std::chrono::milliseconds(200);
// How long a timed-out rank waits for the others' answers: their watchdogs answer every period.
constexpr double kAnswerSeconds = 3.0;

// Whole seconds for waits; the timeout as configured ("0.5 s", "300 s").
std::string seconds_text(double seconds, bool exact = false) {
  char text[32];
  std::snprintf(text, sizeof text, exact ? "%g s" : "%.0f s", seconds);
  return text;
}

}  // namespace

const char* collective_name(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::AllReduce:
      return "all_reduce";
    case CollectiveKind::AllGather:
      return "all_gather";
    case CollectiveKind::Broadcast:
      return "broadcast";
    case CollectiveKind::Barrier:
      return "barrier";
    case CollectiveKind::Wait:
      return "device wait";
    case CollectiveKind::None:
      break;
  }
  return "no collective";
}

Watchdog::Watchdog(int world_rank, double timeout_seconds,
                   std::unique_ptr<ProgressExchange> exchange)
    : world_rank_(world_rank), timeout_seconds_(timeout_seconds), exchange_(std::move(exchange)) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  exchange_.reset();  // on this (the main) thread, before MPI is finalized
}

int Watchdog::add_axis(std::string label, std::vector<int> members) {
  HOGWILD_CHECK(!thread_.joinable(), "Watchdog: add axes before start()");
  HOGWILD_CHECK(axes_.size() < static_cast<size_t>(ProgressReport::kMaxAxes), "Watchdog: at most ",
                ProgressReport::kMaxAxes, " axes");
  auto axis = std::make_unique<Axis>();
  axis->label = std::move(label);
  axis->members = std::move(members);
  axes_.push_back(std::move(axis));
  return static_cast<int>(axes_.size()) - 1;
}

void Watchdog::start() {
  if (timeout_seconds_ > 0 && !thread_.joinable()) thread_ = std::thread([this] { watch(); });
}

void Watchdog::enter(int axis, CollectiveKind kind) {
  Axis& a = *axes_[static_cast<size_t>(axis)];
  a.entered.fetch_add(1);
  a.started_ns.store(now_ns());  // before `current`: a watchdog that sees it sees this start
  a.current.store(static_cast<int32_t>(kind));
}

void Watchdog::leave(int axis) { axes_[static_cast<size_t>(axis)]->current.store(-1); }

ProgressReport Watchdog::report() const {
  ProgressReport report;
  report.world_rank = world_rank_;
  report.axes = static_cast<int32_t>(axes_.size());
  const int64_t now = now_ns();
  for (size_t i = 0; i < axes_.size(); ++i) {
    const Axis& a = *axes_[i];
    report.current[i] = a.current.load();
    report.entered[i] = a.entered.load();
    if (report.current[i] >= 0)
      report.waited[i] = static_cast<double>(now - a.started_ns.load()) * 1e-9;
  }
  return report;
}

std::string Watchdog::stall_message(
    int axis, const ProgressReport& mine, const std::vector<int>& peers,
    const std::vector<std::optional<ProgressReport>>& answers) const {
  const auto a = static_cast<size_t>(axis);
  const uint64_t reached = mine.entered[a];
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::string message =
      cat("hogwild: error: ", host, " rank ", world_rank_, ": ",
          collective_name(static_cast<CollectiveKind>(mine.current[a])), " #", reached, " on the ",
          axes_[a]->label, " axis waited ", seconds_text(mine.waited[a]), " (timeout ",
          seconds_text(timeout_seconds_, true), "); ");
  std::string peer_list;
  for (int peer : peers) peer_list += cat(peer_list.empty() ? "" : ", ", peer);
  if (answers.empty())
    return message + cat("the other ranks could not be asked (MPI without thread support): one ",
                         "of ranks ", peer_list, " is lost or stuck; aborting the job");
  std::string stuck;
  for (size_t i = 0; i < peers.size(); ++i) {
    std::string why;
    if (!answers[i]) {
      why = "does not answer (stopped or lost)";
    } else if (answers[i]->entered[a] < reached) {
      const ProgressReport& peer = *answers[i];
      why = cat("has not reached it (it is computing, ", reached - peer.entered[a],
                " collective(s) behind on this axis)");
      for (int b = 0; b < peer.axes && b < static_cast<int>(axes_.size()); ++b) {
        if (peer.current[b] < 0) continue;
        why = cat("has not reached it (it waits in ",
                  collective_name(static_cast<CollectiveKind>(peer.current[b])), " #",
                  peer.entered[b], " on the ", axes_[static_cast<size_t>(b)]->label, " axis for ",
                  seconds_text(peer.waited[b]), ")");
        break;
      }
    } else {
      continue;  // it reached this collective and waits too
    }
    stuck += cat(stuck.empty() ? "" : "; ", "rank ", peers[i], " ", why);
  }
  if (stuck.empty())
    return message + cat("ranks ", peer_list, " reached it too and wait (the ranks called ",
                         "different collectives?); aborting the job");
  return message + "stuck: " + stuck + "; aborting the job";
}

void Watchdog::watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, kPeriod, [this] { return stopping_; })) {
    if (exchange_) exchange_->serve(report());
    for (size_t i = 0; i < axes_.size(); ++i) {
      const Axis& a = *axes_[i];
      if (a.current.load() < 0) continue;
      const double waited = static_cast<double>(now_ns() - a.started_ns.load()) * 1e-9;
      if (waited >= timeout_seconds_) check_stalled(static_cast<int>(i));
    }
  }
}

void Watchdog::check_stalled(int axis) {
  const ProgressReport mine = report();
  const auto a = static_cast<size_t>(axis);
  std::vector<int> peers;
  for (int member : axes_[a]->members)
    if (member != world_rank_) peers.push_back(member);
  std::vector<std::optional<ProgressReport>> answers;
  if (exchange_) answers = exchange_->ask(peers, kAnswerSeconds, [this] { return report(); });
  // A late rank may have arrived while we asked: then the collective is over, nobody is stuck.
  if (axes_[a]->entered.load() != mine.entered[a] || axes_[a]->current.load() < 0) return;
  // The main thread is stuck inside MPI: exiting makes the launcher end every other rank.
  const std::string message = stall_message(axis, mine, peers, answers);
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(3);
}

MonitoredCommunicator::MonitoredCommunicator(std::unique_ptr<Communicator> inner,
                                             std::shared_ptr<Watchdog> watchdog, int axis)
    : inner_(std::move(inner)), watchdog_(std::move(watchdog)), axis_(axis) {}

template <typename Call>
void MonitoredCommunicator::timed(CollectiveKind kind, double& bucket, Call&& call) {
  const int64_t start = now_ns();
  if (watchdog_) watchdog_->enter(axis_, kind);
  try {
    call();
  } catch (...) {
    // The error (e.g. a peer's, named by the communicator) ends the run: no stall to report.
    if (watchdog_) watchdog_->leave(axis_);
    throw;
  }
  if (watchdog_) watchdog_->leave(axis_);
  bucket += static_cast<double>(now_ns() - start) * 1e-9;
}

void MonitoredCommunicator::all_reduce_sum(float* data, size_t count) {
  timed(CollectiveKind::AllReduce, seconds_.all_reduce,
        [&] { inner_->all_reduce_sum(data, count); });
}
void MonitoredCommunicator::all_gather(const void* send, void* recv, size_t bytes) {
  timed(CollectiveKind::AllGather, seconds_.all_gather,
        [&] { inner_->all_gather(send, recv, bytes); });
}
void MonitoredCommunicator::broadcast(void* data, size_t bytes, int root) {
  timed(CollectiveKind::Broadcast, seconds_.other, [&] { inner_->broadcast(data, bytes, root); });
}
void MonitoredCommunicator::barrier() {
  timed(CollectiveKind::Barrier, seconds_.other, [&] { inner_->barrier(); });
}
void MonitoredCommunicator::wait() {
  // A host communicator has nothing queued: no count, so host runs report as before.
  if (!inner_->stream_ordered()) return inner_->wait();
  timed(CollectiveKind::Wait, seconds_.device_wait, [&] { inner_->wait(); });
}

}  // namespace hogwild
