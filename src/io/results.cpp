#include "io/results.h"

#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

#include "common/error.h"

namespace hogwild {
namespace {

// HDF5's C API, not its C++ wrapper: the wrapper's destructors close objects again after a failed
// close (a second H5Fclose of a file whose flush failed crashed inside H5F__close on a full disk)
// and print to stderr when they fail. Here every handle is closed exactly once, every return code
// is checked, and HDF5's error stack never reaches the terminal.

// The first error HDF5 reported since the last guarded() began, as one line: the system's reason
// where the innermost error has one ("No space left on device"), else HDF5's innermost message.
// HDF5 clears its error stack at the start of every call (cleanup included), so the stack is read
// when the error happens, by this handler, not later.
thread_local std::string first_error;

herr_t read_innermost(unsigned position, const H5E_error2_t* error, void* data) {
  if (position != 0 || error == nullptr || error->desc == nullptr) return 0;
  std::string text = error->desc;
  // The file drivers report a failed system call as "..., errno = 28, error message = '...'".
  const std::string key = "error message = '";
  const size_t start = text.find(key);
  if (start != std::string::npos) {
    const size_t end = text.find('\'', start + key.size());
    if (end != std::string::npos) text = text.substr(start + key.size(), end - start - key.size());
  }
  *static_cast<std::string*>(data) = text;
  return 0;
}

herr_t record_error(hid_t stack, void*) {
  if (first_error.empty()) {
    H5Ewalk2(stack, H5E_WALK_UPWARD, read_innermost, &first_error);
    if (first_error.empty()) first_error = "unknown HDF5 error";
  }
  return 0;
}

struct Hdf5Failure {};

// Checks an HDF5 return value (negative: failed), passing a valid one through.
template <typename Value>
Value must(Value value) {
  if (value < 0) throw Hdf5Failure{};
  return value;
}

// Runs HDF5 calls; a failure becomes one hogwild::Error line naming the file and what was written.
template <typename Body>
void guarded(const std::string& path, const std::string& what, Body&& body) {
  first_error.clear();
  try {
    std::forward<Body>(body)();
  } catch (const Hdf5Failure&) {
    const std::string reason = first_error.empty() ? "unknown HDF5 error" : first_error;
    fail("results: cannot ", what, " in ", path, ": ", reason);
  }
}

// One HDF5 object, closed once when the handle dies (or earlier, by close()). A failed close is
// not retried: the object is gone either way.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(must(id)), closer_(closer) {}
  ~Handle() { static_cast<void>(release()); }
  Handle(Handle&& other) noexcept
      : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      static_cast<void>(release());
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      closer_ = other.closer_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now; throws Hdf5Failure if HDF5 could not (the data may not be on disk).
  void close() {
    if (release() < 0) throw Hdf5Failure{};
  }

 private:
  herr_t release() noexcept {
    if (id_ < 0) return 0;
    const herr_t status = closer_(std::exchange(id_, H5I_INVALID_HID));
    return status;
  }

  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

Handle scalar_space() { return {H5Screate(H5S_SCALAR), H5Sclose}; }

Handle rows(size_t count) {
  const hsize_t dims[1] = {static_cast<hsize_t>(count)};
  return {H5Screate_simple(1, dims, nullptr), H5Sclose};
}

// Strings are variable-length UTF-8. Such strings end at their first NUL, so a text holding NUL
// bytes is stored instead as a fixed-length UTF-8 string of exactly its bytes: nothing after the
// NUL is lost (readers such as numpy drop trailing NULs only).
bool holds_nul(const std::string& value) { return value.find('\0') != std::string::npos; }

Handle string_type(const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (holds_nul(value)) {
    must(H5Tset_size(type.id(), value.size()));
    must(H5Tset_strpad(type.id(), H5T_STR_NULLPAD));
  } else {
    must(H5Tset_size(type.id(), H5T_VARIABLE));
  }
  must(H5Tset_cset(type.id(), H5T_CSET_UTF8));
  return type;
}

// The buffer HDF5 reads a string from: a char* for a variable-length one, the bytes themselves
// for a fixed-length one.
const void* string_buffer(const std::string& value, const char** pointer) {
  *pointer = value.c_str();
  return holds_nul(value) ? static_cast<const void*>(value.data()) : pointer;
}

void put_string(hid_t object, const char* name, const std::string& value) {
  const Handle type = string_type(value);
  const Handle space = scalar_space();
  const Handle attribute(H5Acreate2(object, name, type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT),
                         H5Aclose);
  const char* pointer = nullptr;
  must(H5Awrite(attribute.id(), type.id(), string_buffer(value, &pointer)));
}

template <typename Value>
void put_number(hid_t object, const char* name, hid_t file_type, hid_t memory_type, Value value) {
  const Handle space = scalar_space();
  const Handle attribute(H5Acreate2(object, name, file_type, space.id(), H5P_DEFAULT, H5P_DEFAULT),
                         H5Aclose);
  must(H5Awrite(attribute.id(), memory_type, &value));
}

void put_int64(hid_t object, const char* name, int64_t value) {
  put_number(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, value);
}

void put_int8(hid_t object, const char* name, int8_t value) {
  put_number(object, name, H5T_STD_I8LE, H5T_NATIVE_INT8, value);
}

void put_double(hid_t object, const char* name, double value) {
  put_number(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, value);
}

void put_string_dataset(hid_t group, const char* name, const std::string& value) {
  const Handle type = string_type(value);
  const Handle space = scalar_space();
  const Handle dataset(
      H5Dcreate2(group, name, type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      H5Dclose);
  const char* pointer = nullptr;
  must(H5Dwrite(dataset.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT,
                string_buffer(value, &pointer)));
}

// A one-dimensional dataset of `count` records; nothing is written for an empty one (H5Dwrite
// rejects the null buffer of an empty vector).
void put_table(hid_t group, const char* name, hid_t file_type, hid_t memory_type, const void* data,
               size_t count) {
  const Handle space = rows(count);
  const Handle dataset(
      H5Dcreate2(group, name, file_type, space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      H5Dclose);
  if (count > 0) must(H5Dwrite(dataset.id(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
}

// A two-dimensional dataset [count][width], row-major; nothing is written when it is empty.
void put_matrix(hid_t group, const char* name, hid_t file_type, hid_t memory_type, const void* data,
                size_t count, size_t width) {
  const hsize_t dims[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(width)};
  const Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose);
  const Handle dataset(
      H5Dcreate2(group, name, file_type, space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      H5Dclose);
  if (count > 0 && width > 0)
    must(H5Dwrite(dataset.id(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
}

// Without record_logprobs (top_k 0) nothing; with it, one logprob and top_k alternatives a token.
bool logprobs_align(const WorkerRecord& worker) {
  if (worker.top_k < 0) return false;
  const size_t n = worker.tokens.size(), k = static_cast<size_t>(worker.top_k);
  if (k == 0)
    return worker.logprobs.empty() && worker.top_ids.empty() && worker.top_logprobs.empty();
  return worker.logprobs.size() == n && worker.top_ids.size() == n * k &&
         worker.top_logprobs.size() == n * k;
}

// record_logprobs: the worker's logprobs [n] and top-K [n, K], aligned with its tokens.
void put_logprobs(hid_t folder, const WorkerRecord& worker) {
  const size_t n = worker.tokens.size();
  const auto k = static_cast<size_t>(worker.top_k);
  put_table(folder, "logprobs", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, worker.logprobs.data(), n);
  put_matrix(folder, "top_ids", H5T_STD_I32LE, H5T_NATIVE_INT32, worker.top_ids.data(), n, k);
  put_matrix(folder, "top_logprobs", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, worker.top_logprobs.data(),
             n, k);
}

Handle new_group(hid_t parent, const std::string& name) {
  return {H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
}

// A table row's schema, stated once: each field's name, its place in the C++ record, and whether
// it is an int32 or a float64. The memory type follows the struct; the file type is the same
// fields packed little-endian, so files read the same on every machine.
struct Field {
  const char* name;
  size_t offset;
  bool is_int32;  // else float64
};

struct TableSchema {
  Handle memory, file;
};

template <typename Record>
TableSchema table_schema(std::initializer_list<Field> fields) {
  size_t file_size = 0;
  for (const Field& field : fields) file_size += field.is_int32 ? sizeof(int32_t) : sizeof(double);
  TableSchema schema{Handle(H5Tcreate(H5T_COMPOUND, sizeof(Record)), H5Tclose),
                     Handle(H5Tcreate(H5T_COMPOUND, file_size), H5Tclose)};
  size_t offset = 0;
  for (const Field& field : fields) {
    must(H5Tinsert(schema.memory.id(), field.name, field.offset,
                   field.is_int32 ? H5T_NATIVE_INT32 : H5T_NATIVE_DOUBLE));
    must(H5Tinsert(schema.file.id(), field.name, offset,
                   field.is_int32 ? H5T_STD_I32LE : H5T_IEEE_F64LE));
    offset += field.is_int32 ? sizeof(int32_t) : sizeof(double);
  }
  return schema;
}

TableSchema step_schema() {
  return table_schema<StepRecord>({{"worker", offsetof(StepRecord, worker), true},
                                   {"step", offsetof(StepRecord, step), true},
                                   {"first_token", offsetof(StepRecord, first_token), true},
                                   {"end_token", offsetof(StepRecord, end_token), true},
                                   {"finished_pass", offsetof(StepRecord, finished_pass), true},
                                   {"seconds", offsetof(StepRecord, seconds), false}});
}

TableSchema timing_schema() {
  return table_schema<RankTiming>(
      {{"rank", offsetof(RankTiming, rank), true},
       {"group", offsetof(RankTiming, group), true},
       {"tensor_rank", offsetof(RankTiming, tensor_rank), true},
       {"seconds", offsetof(RankTiming, seconds), false},
       {"compute_seconds", offsetof(RankTiming, compute_seconds), false},
       {"tensor_seconds", offsetof(RankTiming, tensor_seconds), false},
       {"worker_seconds", offsetof(RankTiming, worker_seconds), false}});
}

// Where a file is written until it is published: a hidden name beside it, unique to this process,
// so whatever has the final name stays untouched until this run has a result to put there.
std::string staging_path(const std::string& path) {
  const std::filesystem::path final_path(path);
  return (final_path.parent_path() /
          ("." + final_path.filename().string() + "." + std::to_string(getpid()) + ".partial"))
      .string();
}

// A path we are about to replace must be a file (or nothing), never a folder or a device.
void require_file_or_nothing(const std::string& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
    fail(path, ": exists and is not a regular file");
}

// True when another process holds a lock on `path` (HDF5 locks every file it writes).
bool locked_by_another_writer(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool locked = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases the probe's lock
  return locked;
}

// Moves `staged` to `path`. Without `overwrite` an existing `path` is never replaced (atomic:
// renameat2 RENAME_NOREPLACE); with it, a file another run is writing is not replaced either.
void publish(const std::string& staged, const std::string& path, bool overwrite) {
  if (overwrite) {
    if (locked_by_another_writer(path))
      fail("results: ", path, " is being written by another run; this run's results stay in ",
           staged);
    if (std::rename(staged.c_str(), path.c_str()) != 0)
      fail("results: cannot move ", staged, " to ", path, ": ", std::strerror(errno));
    return;
  }
  if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST)
      fail("results: ", path,
           " appeared while this run was going (another run?); this run's "
           "results stay in ",
           staged, " (--overwrite replaces an existing file)");
    fail("results: cannot move ", staged, " to ", path, ": ", std::strerror(errno));
  }
}

void make_parent_folders(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code error;
  std::filesystem::create_directories(parent, error);
  if (error) fail(path, ": cannot create folder ", parent.string(), ": ", error.message());
}

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

// A link name may not contain '/' (the path separator) or NUL, and may not be "." or "..".
std::string hdf5_name(const std::string& id) {
  std::string name = id;
  for (char& c : name)
    if (c == '/' || c == '\0') c = '_';
  if (name.find_first_not_of('.') == std::string::npos) name = "_" + name;
  return name;
}

const char* correctness(int correct) {
  if (correct == 1) return "correct";
  if (correct == 0) return "wrong";
  return "not checked";
}

// The transcript: plain POSIX writes, so that a full disk is reported with its errno, and each
// problem reaches the disk (fdatasync) before the run goes on.
class TextFile {
 public:
  TextFile() = default;
  ~TextFile() { static_cast<void>(close()); }
  TextFile(const TextFile&) = delete;
  TextFile& operator=(const TextFile&) = delete;

  bool open_new(const std::string& path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    return fd_ >= 0;
  }
  bool is_open() const { return fd_ >= 0; }
  // Appends all of `text` and syncs; false (errno set) if the system refused.
  bool append(const std::string& text) {
    for (size_t done = 0; done < text.size();) {
      const ssize_t count = ::write(fd_, text.data() + done, text.size() - done);
      if (count < 0 && errno == EINTR) continue;
      if (count < 0) return false;
      done += static_cast<size_t>(count);
    }
    return ::fdatasync(fd_) == 0 || errno == EINVAL;  // EINVAL: a file that cannot sync
  }
  bool close() {
    if (fd_ < 0) return true;
    return ::close(std::exchange(fd_, -1)) == 0;
  }

 private:
  int fd_ = -1;
};

}  // namespace

struct ResultsWriter::Impl {
  std::string hdf5_path;
  std::string transcript_path;
  std::string hdf5_staged, transcript_staged;  // the files' names until published
  bool overwrite = false;
  bool published = false;
  Handle file;
  Handle problems;
  TextFile transcript;
  bool open = false;
  std::set<std::string> ids;
  std::set<std::string> names;
  int64_t written = 0;
  int64_t checked = 0;  // problems with a reference (correct != -1)
  int64_t correct = 0;
  int64_t failed = 0;
  int64_t generated_tokens = 0;

  // Also runs when the constructor throws half-way, which ~ResultsWriter would not.
  ~Impl() { close_files(); }
  void write_problem(const ProblemResult& result, const std::string& name);
  void append_transcript(const ProblemResult& result);
  void publish_once();
  void close_files() noexcept;
};

// Both files take their final names once the first result (or the summary of an empty run) is on
// disk; before that, a failed run leaves whatever had those names as it was.
void ResultsWriter::Impl::publish_once() {
  if (published) return;
  publish(hdf5_staged, hdf5_path, overwrite);
  published = true;  // the HDF5 file is in place; a failed move of the transcript names its file
  publish(transcript_staged, transcript_path, overwrite);
}

ResultsWriter::ResultsWriter(const std::string& hdf5_path, const std::string& transcript_path,
                             const RunInfo& info, bool overwrite)
    : impl_(std::make_unique<Impl>()) {
  // Errors reach the user as one hogwild::Error line; HDF5 prints nothing itself, not even at
  // exit (its atexit clean-up reports files it could not close after a full disk).
  static const bool configured = [] {
    H5dont_atexit();
    return H5Eset_auto2(H5E_DEFAULT, record_error, nullptr) >= 0;
  }();
  HOGWILD_CHECK(configured, "results: cannot set HDF5's error handler");
  Impl& run = *impl_;
  run.hdf5_path = hdf5_path;
  run.transcript_path = transcript_path;
  HOGWILD_CHECK(!hdf5_path.empty(), "results: the HDF5 path is empty");
  HOGWILD_CHECK(!transcript_path.empty(), "results: the transcript path is empty");
  run.overwrite = overwrite;
  require_file_or_nothing(hdf5_path);
  require_file_or_nothing(transcript_path);
  make_parent_folders(hdf5_path);
  make_parent_folders(transcript_path);
  run.hdf5_staged = staging_path(hdf5_path);
  run.transcript_staged = staging_path(transcript_path);

  guarded(hdf5_path, "create the file", [&] {
    run.file = Handle(H5Fcreate(run.hdf5_staged.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT),
                      H5Fclose);
  });
  run.open = true;
  guarded(hdf5_path, "write the run attributes", [&] {
    const hid_t root = run.file.id();
    put_string(root, "config", info.config_text);
    put_string(root, "model", info.model);
    put_string(root, "layout", info.layout);
    put_int64(root, "workers", info.workers);
    put_string(root, "created", utc_now_iso8601());
    put_string(root, "hogwild_version", HOGWILD_VERSION);
    run.problems = new_group(root, "problems");
    must(H5Fflush(root, H5F_SCOPE_GLOBAL));
  });

  if (!run.transcript.open_new(run.transcript_staged))
    fail("results: cannot create the transcript ", transcript_path, ": ", std::strerror(errno));
}

// Impl closes the files, without a summary, if close() was not called.
ResultsWriter::~ResultsWriter() = default;

void ResultsWriter::write(const ProblemResult& result) {
  Impl& run = *impl_;
  HOGWILD_CHECK(run.open, run.hdf5_path, ": cannot write problem '", result.id,
                "' after the results were closed");
  HOGWILD_CHECK(run.ids.insert(result.id).second, run.hdf5_path, ": problem '", result.id,
                "' was already written");
  // Two ids may sanitize to one name ("a/b", "a_b"); the later one gets a number appended.
  const std::string base = hdf5_name(result.id);
  std::string name = base;
  for (int suffix = 2; run.names.contains(name); ++suffix)
    name = base + "#" + std::to_string(suffix);
  run.names.insert(name);

  run.write_problem(result, name);
  ++run.written;
  if (!result.error.empty()) ++run.failed;
  if (result.correct != -1) {
    ++run.checked;
    if (result.correct == 1) ++run.correct;
  }
  run.generated_tokens += result.generated_tokens;
  run.append_transcript(result);
  run.publish_once();
}

// The problem's group is built unnamed (H5Gcreate_anon) and linked under /problems only once
// complete and flushed: a write cut short (a full disk) leaves no half-written problem to read.
void ResultsWriter::Impl::write_problem(const ProblemResult& result, const std::string& name) {
  guarded(hdf5_path, "write problem '" + result.id + "'", [&] {
    const Handle group(H5Gcreate_anon(file.id(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    const hid_t g = group.id();
    put_string(g, "id", result.id);
    put_string(g, "question", result.question);
    put_string(g, "reference_answer", result.reference_answer);
    put_string(g, "answer", result.answer);
    put_int8(g, "correct", static_cast<int8_t>(result.correct));
    put_string(g, "stop_reason", result.stop_reason);
    put_string(g, "error", result.error);
    put_int64(g, "forward_passes", result.forward_passes);
    put_int64(g, "generated_tokens", result.generated_tokens);
    put_double(g, "seconds", result.seconds);
    put_int64(g, "index", written);

    const Handle workers = new_group(g, "workers");
    std::set<std::string> worker_names;
    for (const WorkerRecord& worker : result.workers) {
      const std::string worker_name = hdf5_name(worker.name);
      HOGWILD_CHECK(worker_names.insert(worker_name).second, hdf5_path, ": problem '", result.id,
                    "' has two workers named '", worker.name, "'");
      // Checked before the problem is linked: records out of line with the tokens are a bug.
      HOGWILD_CHECK(logprobs_align(worker), hdf5_path, ": problem '", result.id, "', worker '",
                    worker.name, "': ", worker.logprobs.size(), " logprobs and ",
                    worker.top_ids.size(), " top ids (top_k ", worker.top_k, ") for ",
                    worker.tokens.size(), " tokens");
      const Handle folder = new_group(workers.id(), worker_name);
      put_table(folder.id(), "tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, worker.tokens.data(),
                worker.tokens.size());
      if (worker.top_k > 0) put_logprobs(folder.id(), worker);
      put_string_dataset(folder.id(), "text", worker.text);
    }
    const TableSchema schema = step_schema();
    put_table(g, "steps", schema.file.id(), schema.memory.id(), result.steps.data(),
              result.steps.size());
    put_string_dataset(g, "transcript", result.transcript);
    must(H5Fflush(file.id(), H5F_SCOPE_GLOBAL));
    // Now it has a name; flushed again so that a run killed later still leaves it readable.
    must(H5Olink(g, problems.id(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
    must(H5Fflush(file.id(), H5F_SCOPE_GLOBAL));
  });
}

void ResultsWriter::Impl::append_transcript(const ProblemResult& result) {
  std::ostringstream text;
  text << "=== problem " << result.id << " ===\n" << result.transcript;
  if (!result.transcript.empty() && result.transcript.back() != '\n') text << '\n';
  text << "=== answer: " << (result.answer.empty() ? "(none)" : result.answer);
  if (!result.reference_answer.empty())
    text << " (reference " << result.reference_answer << ", " << correctness(result.correct) << ")";
  if (!result.error.empty()) text << "; failed: " << result.error;
  text << "; stop: " << result.stop_reason << "; " << result.generated_tokens << " tokens in "
       << result.seconds << " s ===\n\n";
  if (!transcript.append(text.str()))
    fail("results: cannot write the transcript of problem '", result.id, "' in ", transcript_path,
         ": ", std::strerror(errno));
}

void ResultsWriter::write_timings(const std::vector<RankTiming>& timings) {
  Impl& run = *impl_;
  HOGWILD_CHECK(run.open, run.hdf5_path, ": the results were already closed");
  guarded(run.hdf5_path, "write the timings", [&] {
    const TableSchema schema = timing_schema();
    put_table(run.file.id(), "timings", schema.file.id(), schema.memory.id(), timings.data(),
              timings.size());
    must(H5Fflush(run.file.id(), H5F_SCOPE_GLOBAL));
  });
}

void ResultsWriter::close(double total_seconds) {
  Impl& run = *impl_;
  HOGWILD_CHECK(run.open, run.hdf5_path, ": the results were already closed");
  guarded(run.hdf5_path, "write the run summary", [&] {
    const hid_t root = run.file.id();
    const double accuracy =
        run.checked > 0 ? static_cast<double>(run.correct) / static_cast<double>(run.checked)
                        : std::numeric_limits<double>::quiet_NaN();
    put_int64(root, "problems", run.written);
    put_int64(root, "failed_problems", run.failed);
    put_double(root, "accuracy", accuracy);
    put_double(root, "total_seconds", total_seconds);
    put_int64(root, "generated_tokens", run.generated_tokens);
    put_double(root, "tokens_per_second",
               total_seconds > 0 ? static_cast<double>(run.generated_tokens) / total_seconds : 0.0);
    must(H5Fflush(root, H5F_SCOPE_GLOBAL));
  });
  run.publish_once();
  run.open = false;
  guarded(run.hdf5_path, "close the file", [&] {
    run.problems.close();
    run.file.close();
  });
  if (!run.transcript.close())
    fail("results: cannot close the transcript ", run.transcript_path, ": ", std::strerror(errno));
}

void ResultsWriter::Impl::close_files() noexcept {
  // Each handle closes once; after a failure (a full disk) HDF5 may refuse, which is all right:
  // every finished problem was flushed before it was linked.
  open = false;
  problems = Handle();
  file = Handle();
  static_cast<void>(transcript.close());
  // Nothing was published: this run leaves no file behind (and touched none).
  if (!published) {
    std::remove(hdf5_staged.c_str());
    std::remove(transcript_staged.c_str());
  }
}

}  // namespace hogwild
