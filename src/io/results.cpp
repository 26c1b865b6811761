#include "io/results.h"

#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
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

// A table row's schema, stated once: each field's name, its place in the C++ record and its
// type. The memory type follows the struct; the file type is the same fields packed
// little-endian, so files read the same on every machine. Strings are variable-length UTF-8
// (a `const char*` in the record).
enum class FieldType { kInt32, kInt8, kFloat64, kString };

struct Field {
  const char* name;
  size_t offset;
  FieldType type;
};

struct TableSchema {
  Handle memory, file;
};

Handle utf8_string_type() {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  must(H5Tset_size(type.id(), H5T_VARIABLE));
  must(H5Tset_cset(type.id(), H5T_CSET_UTF8));
  return type;
}

template <typename Record>
TableSchema table_schema(std::initializer_list<Field> fields) {
  const Handle text = utf8_string_type();
  const auto file_size = [&](FieldType type) -> size_t {
    switch (type) {
      case FieldType::kInt32:
        return sizeof(int32_t);
      case FieldType::kInt8:
        return sizeof(int8_t);
      case FieldType::kFloat64:
        return sizeof(double);
      case FieldType::kString:
        return H5Tget_size(text.id());
    }
    return 0;
  };
  size_t total = 0;
  for (const Field& field : fields) total += file_size(field.type);
  TableSchema schema{Handle(H5Tcreate(H5T_COMPOUND, sizeof(Record)), H5Tclose),
                     Handle(H5Tcreate(H5T_COMPOUND, total), H5Tclose)};
  size_t offset = 0;
  for (const Field& field : fields) {
    hid_t memory = H5T_NATIVE_INT32, file = H5T_STD_I32LE;
    if (field.type == FieldType::kInt8) memory = H5T_NATIVE_INT8, file = H5T_STD_I8LE;
    if (field.type == FieldType::kFloat64) memory = H5T_NATIVE_DOUBLE, file = H5T_IEEE_F64LE;
    if (field.type == FieldType::kString) memory = file = text.id();
    must(H5Tinsert(schema.memory.id(), field.name, field.offset, memory));
    must(H5Tinsert(schema.file.id(), field.name, offset, file));
    offset += file_size(field.type);
  }
  return schema;
}

constexpr FieldType kI32 = FieldType::kInt32, kI8 = FieldType::kInt8, kF64 = FieldType::kFloat64,
                    kText = FieldType::kString;

TableSchema step_schema() {
  return table_schema<StepRecord>({{"worker", offsetof(StepRecord, worker), kI32},
                                   {"step", offsetof(StepRecord, step), kI32},
                                   {"first_token", offsetof(StepRecord, first_token), kI32},
                                   {"end_token", offsetof(StepRecord, end_token), kI32},
                                   {"finished_pass", offsetof(StepRecord, finished_pass), kI32},
                                   {"seconds", offsetof(StepRecord, seconds), kF64},
                                   {"started_pass", offsetof(StepRecord, started_pass), kI32}});
}

TableSchema timing_schema() {
  return table_schema<RankTiming>({{"rank", offsetof(RankTiming, rank), kI32},
                                   {"group", offsetof(RankTiming, group), kI32},
                                   {"tensor_rank", offsetof(RankTiming, tensor_rank), kI32},
                                   {"seconds", offsetof(RankTiming, seconds), kF64},
                                   {"compute_seconds", offsetof(RankTiming, compute_seconds), kF64},
                                   {"tensor_seconds", offsetof(RankTiming, tensor_seconds), kF64},
                                   {"worker_seconds", offsetof(RankTiming, worker_seconds), kF64}});
}

// Rows as HDF5 writes them: plain data and C strings that point into the records.
struct CheckpointRow {
  int32_t checkpoint;
  const char* answer;
  int8_t correct;
  int32_t forward_passes;
  double seconds;
};

TableSchema checkpoint_schema() {
  return table_schema<CheckpointRow>(
      {{"checkpoint", offsetof(CheckpointRow, checkpoint), kI32},
       {"answer", offsetof(CheckpointRow, answer), kText},
       {"correct", offsetof(CheckpointRow, correct), kI8},
       {"forward_passes", offsetof(CheckpointRow, forward_passes), kI32},
       {"seconds", offsetof(CheckpointRow, seconds), kF64}});
}

struct EventRow {
  int32_t pass;
  int32_t worker;
  const char* kind;
};

TableSchema event_schema() {
  return table_schema<EventRow>({{"pass", offsetof(EventRow, pass), kI32},
                                 {"worker", offsetof(EventRow, worker), kI32},
                                 {"kind", offsetof(EventRow, kind), kText}});
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

// One problem's group, built unnamed (H5Gcreate_anon) and linked under /problems only once
// complete: a write cut short (a full disk) leaves no half-written problem to read.
void write_problem(hid_t file, hid_t problems, const ProblemResult& result, const std::string& name,
                   int64_t index, const std::string& hdf5_path) {
  const Handle group(H5Gcreate_anon(file, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  const hid_t g = group.id();
  put_string(g, "id", result.id);
  put_string(g, "question", result.question);
  put_string(g, "reference_answer", result.reference_answer);
  put_string(g, "answer", result.answer);
  put_string(g, "answer_source", result.answer_source);
  put_number(g, "answer_worker", H5T_STD_I32LE, H5T_NATIVE_INT32, result.answer_worker);
  put_int8(g, "correct", static_cast<int8_t>(result.correct));
  put_string(g, "stop_reason", result.stop_reason);
  put_string(g, "error", result.error);
  put_int64(g, "forward_passes", result.forward_passes);
  put_int64(g, "generated_tokens", result.generated_tokens);
  put_double(g, "seconds", result.seconds);
  put_int64(g, "index", index);

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
  const TableSchema steps = step_schema();
  put_table(g, "steps", steps.file.id(), steps.memory.id(), result.steps.data(),
            result.steps.size());
  if (!result.checkpoints.empty()) {
    std::vector<CheckpointRow> rows;
    rows.reserve(result.checkpoints.size());
    for (const CheckpointRecord& c : result.checkpoints)
      rows.push_back({c.checkpoint, c.answer.c_str(), static_cast<int8_t>(c.correct),
                      c.forward_passes, c.seconds});
    const TableSchema schema = checkpoint_schema();
    put_table(g, "checkpoints", schema.file.id(), schema.memory.id(), rows.data(), rows.size());
  }
  std::vector<EventRow> events;
  events.reserve(result.events.size());
  for (const EventRecord& e : result.events) events.push_back({e.pass, e.worker, e.kind.c_str()});
  const TableSchema event_table = event_schema();
  put_table(g, "events", event_table.file.id(), event_table.memory.id(), events.data(),
            events.size());
  put_string_dataset(g, "transcript", result.transcript);
  must(H5Olink(g, problems, name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
}

// ---- Reading results back (resume) ----

// A scalar string as put_string / put_string_dataset stored it: variable-length, or fixed-length
// (exactly its bytes) when it holds a NUL. `read(memory_type, buffer)` reads the attribute or
// dataset whose file type is `type`.
template <typename Read>
std::string read_stored_string(hid_t type, Read&& read) {
  if (H5Tget_class(type) != H5T_STRING) throw Hdf5Failure{};
  if (must(H5Tis_variable_str(type)) > 0) {
    const Handle memory = utf8_string_type();
    char* text = nullptr;
    must(read(memory.id(), static_cast<void*>(&text)));
    std::string value = text != nullptr ? text : "";
    H5free_memory(text);
    return value;
  }
  std::string value(H5Tget_size(type), '\0');
  must(read(type, static_cast<void*>(value.data())));
  return value;
}

std::string read_string_attribute(hid_t object, const char* name) {
  if (must(H5Aexists(object, name)) == 0) return {};
  const Handle attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  const Handle type(H5Aget_type(attribute.id()), H5Tclose);
  return read_stored_string(type.id(), [&](hid_t memory, void* buffer) {
    return H5Aread(attribute.id(), memory, buffer);
  });
}

std::string read_string_dataset(hid_t group, const char* name) {
  const Handle dataset(H5Dopen2(group, name, H5P_DEFAULT), H5Dclose);
  const Handle type(H5Dget_type(dataset.id()), H5Tclose);
  return read_stored_string(type.id(), [&](hid_t memory, void* buffer) {
    return H5Dread(dataset.id(), memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer);
  });
}

// A number attribute read as `memory_type` (a missing one is an error).
template <typename Value>
Value read_number_attribute(hid_t object, const char* name, hid_t memory_type) {
  const Handle attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  Value value{};
  must(H5Aread(attribute.id(), memory_type, &value));
  return value;
}

int64_t read_int_attribute(hid_t object, const char* name, int64_t otherwise) {
  if (must(H5Aexists(object, name)) == 0) return otherwise;
  return read_number_attribute<int64_t>(object, name, H5T_NATIVE_INT64);
}

// `correct`: 1, 0, or -1 when unknown.
int read_correct_attribute(hid_t object) {
  return read_number_attribute<int8_t>(object, "correct", H5T_NATIVE_INT8);
}

std::vector<std::string> group_names(hid_t group) {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  hsize_t index = 0;
  must(H5Literate(group, H5_INDEX_NAME, H5_ITER_NATIVE, &index, collect, &names));
  return names;
}

FinishedProblem read_finished(hid_t problems, const std::string& name, const std::string& part) {
  const Handle group(H5Gopen2(problems, name.c_str(), H5P_DEFAULT), H5Gclose);
  FinishedProblem done;
  done.id = read_string_attribute(group.id(), "id");
  done.question = read_string_attribute(group.id(), "question");
  done.name = name;
  done.part_file = part;
  done.index = read_int_attribute(group.id(), "index", 0);
  done.generated_tokens = read_int_attribute(group.id(), "generated_tokens", 0);
  done.failed = !read_string_attribute(group.id(), "error").empty();
  done.correct = read_correct_attribute(group.id());
  return done;
}

bool is_part_name(const std::string& name) {
  return name.size() == 9 && name.ends_with(".h5") &&
         std::all_of(name.begin(), name.begin() + 6, [](char c) { return c >= '0' && c <= '9'; });
}

// The part files of a folder, in the order they were written.
std::vector<std::string> part_files(const std::string& folder) {
  std::vector<std::string> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error))
    if (is_part_name(entry.path().filename().string())) files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::string transcript_entry(const ProblemResult& result) {
  std::ostringstream text;
  text << "=== problem " << result.id << " ===\n" << result.transcript;
  if (!result.transcript.empty() && result.transcript.back() != '\n') text << '\n';
  text << "=== answer: " << (result.answer.empty() ? "(none)" : result.answer);
  if (!result.reference_answer.empty())
    text << " (reference " << result.reference_answer << ", " << correctness(result.correct) << ")";
  if (!result.error.empty()) text << "; failed: " << result.error;
  text << "; stop: " << result.stop_reason << "; " << result.generated_tokens << " tokens in "
       << result.seconds << " s ===\n\n";
  return text.str();
}

// A stored problem's transcript entry, as transcript_entry wrote it.
std::string stored_transcript_entry(hid_t problems, const std::string& name) {
  const Handle group(H5Gopen2(problems, name.c_str(), H5P_DEFAULT), H5Gclose);
  ProblemResult result;
  result.id = read_string_attribute(group.id(), "id");
  result.answer = read_string_attribute(group.id(), "answer");
  result.reference_answer = read_string_attribute(group.id(), "reference_answer");
  result.error = read_string_attribute(group.id(), "error");
  result.stop_reason = read_string_attribute(group.id(), "stop_reason");
  result.generated_tokens = read_int_attribute(group.id(), "generated_tokens", 0);
  result.correct = read_correct_attribute(group.id());
  result.seconds = read_number_attribute<double>(group.id(), "seconds", H5T_NATIVE_DOUBLE);
  result.transcript = read_string_dataset(group.id(), "transcript");
  return transcript_entry(result);
}

void configure_hdf5() {
  // Errors reach the user as one hogwild::Error line; HDF5 prints nothing itself, not even at
  // exit (its atexit clean-up reports files it could not close after a full disk).
  static const bool configured = [] {
    H5dont_atexit();
    return H5Eset_auto2(H5E_DEFAULT, record_error, nullptr) >= 0;
  }();
  HOGWILD_CHECK(configured, "results: cannot set HDF5's error handler");
}

Handle open_readonly(const std::string& path) {
  return {H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
}

// fsync of a file or folder: a renamed part must be on disk before the index names it.
bool sync_path(const std::string& path, bool folder) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (folder ? O_DIRECTORY : 0));
  if (fd < 0) return false;
  const bool synced = ::fsync(fd) == 0 || errno == EINVAL;
  ::close(fd);
  return synced;
}

void put_run_attributes(hid_t root, const RunInfo& info, bool complete) {
  put_string(root, "config", info.config_text);
  put_string(root, "fingerprint", info.fingerprint);
  put_string(root, "model", info.model);
  put_string(root, "layout", info.layout);
  put_int64(root, "workers", info.workers);
  put_string(root, "method", info.method);
  put_string(root, "run_id", info.run_id);
  put_string(root, "varied", info.varied);
  put_int64(root, "budget", info.budget);
  put_int64(root, "batch_problems", info.batch_problems);
  put_int64(root, "tensor", info.tensor);
  put_int64(root, "worker_groups", info.worker_groups);
  put_int64(root, "world_size", info.world_size);
  put_string(root, "created", utc_now_iso8601());
  put_string(root, "hogwild_version", HOGWILD_VERSION);
  put_int8(root, "complete", complete ? 1 : 0);
}

}  // namespace

std::string parts_folder(const std::string& hdf5_path) {
  const std::filesystem::path path(hdf5_path);
  return (path.parent_path() / ("." + path.filename().string() + ".parts")).string();
}

bool remove_leftover_parts(const std::string& hdf5_path) {
  std::error_code error;
  const std::string parts = parts_folder(hdf5_path);
  if (!std::filesystem::is_directory(parts, error)) return false;
  const int fd = ::open(parts.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  // The lock a writer holds for its whole life (lock_parts): held means the folder is in use.
  const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  bool removed = false;
  if (free) removed = std::filesystem::remove_all(parts, error) > 0 && !error;
  ::close(fd);
  return removed;
}

ExistingResults read_existing_results(const std::string& hdf5_path) {
  configure_hdf5();
  ExistingResults existing;
  std::error_code error;
  const std::string parts = parts_folder(hdf5_path);
  const bool has_file = std::filesystem::exists(hdf5_path, error);
  // A parts folder without parts is left by a run killed before its first problem: nothing.
  const bool has_parts = std::filesystem::is_directory(parts, error) && !part_files(parts).empty();
  if (!has_file && !has_parts) return existing;
  existing.found = true;
  // A packed file is the whole run (a parts folder beside it is one whose removal was cut short).
  if (has_file) {
    bool packed = false;
    guarded(hdf5_path, "read the results", [&] {
      const Handle file = open_readonly(hdf5_path);
      if (read_int_attribute(file.id(), "complete", 0) != 1) return;
      packed = true;
      existing.complete = true;
      existing.fingerprint = read_string_attribute(file.id(), "fingerprint");
      const Handle problems(H5Gopen2(file.id(), "problems", H5P_DEFAULT), H5Gclose);
      for (const std::string& name : group_names(problems.id()))
        existing.problems.push_back(read_finished(problems.id(), name, ""));
    });
    if (packed) {
      if (existing.fingerprint.empty())
        fail("results file '", hdf5_path,
             "' has no fingerprint (written by an older hogwild): it cannot be resumed; add "
             "--overwrite to replace it, or choose another output=");
      std::sort(
          existing.problems.begin(), existing.problems.end(),
          [](const FinishedProblem& a, const FinishedProblem& b) { return a.index < b.index; });
      return existing;
    }
    if (!has_parts)
      fail("results file '", hdf5_path,
           "' is an index whose parts folder is gone: add --overwrite to replace it, or choose "
           "another output=");
  }
  for (const std::string& part : part_files(parts)) {
    guarded(part, "read the finished problem", [&] {
      const Handle file = open_readonly(part);
      const std::string fingerprint = read_string_attribute(file.id(), "fingerprint");
      if (existing.fingerprint.empty()) existing.fingerprint = fingerprint;
      if (fingerprint != existing.fingerprint)
        fail("results: ", part, " belongs to another configuration than the parts before it");
      const Handle problems(H5Gopen2(file.id(), "problems", H5P_DEFAULT), H5Gclose);
      for (const std::string& name : group_names(problems.id()))
        existing.problems.push_back(read_finished(problems.id(), name, part));
    });
  }
  return existing;
}

struct ResultsWriter::Impl {
  std::string hdf5_path;
  std::string transcript_path;
  std::string parts;  // the parts folder
  std::string transcript_staged;
  RunInfo info;
  bool overwrite = false;
  bool resumed = false;
  bool published = false;  // the index and the transcript have their names
  bool open = false;
  int lock_fd = -1;
  TextFile transcript;
  std::vector<FinishedProblem> finished;  // every part, in order
  std::set<std::string> ids;
  std::set<std::string> names;
  int64_t written = 0;
  int64_t checked = 0;  // problems with a reference (correct != -1)
  int64_t correct = 0;
  int64_t failed = 0;
  int64_t generated_tokens = 0;
  int64_t session_tokens = 0;  // generated by this process: the rate of this run's seconds
  std::vector<RankTiming> timings;

  // Also runs when the constructor throws half-way, which ~ResultsWriter would not.
  ~Impl() { close_files(); }
  void lock_parts();
  void count(const FinishedProblem& problem);
  std::string part_path(int64_t index) const;
  void write_part(const std::string& path, const std::function<void(hid_t, hid_t)>& body);
  void unpack(const ExistingResults& existing);
  void rebuild_transcript();
  void write_index();
  void publish_file(const std::string& staged, const std::string& path);
  void publish_once();
  void close_files() noexcept;
};

// One writer per parts folder: a second run on the same output is refused while this one lives.
void ResultsWriter::Impl::lock_parts() {
  std::error_code error;
  std::filesystem::create_directories(parts, error);
  if (error) fail("results: cannot create the folder ", parts, ": ", error.message());
  lock_fd = ::open(parts.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_fd < 0) fail("results: cannot open the folder ", parts, ": ", std::strerror(errno));
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
    fail("results: ", hdf5_path, " is being written by another run (", parts, " is locked)");
}

void ResultsWriter::Impl::count(const FinishedProblem& problem) {
  ids.insert(problem.id);
  names.insert(problem.name);
  ++written;
  if (problem.failed) ++failed;
  if (problem.correct != -1) {
    ++checked;
    if (problem.correct == 1) ++correct;
  }
  generated_tokens += problem.generated_tokens;
  finished.push_back(problem);
}

std::string ResultsWriter::Impl::part_path(int64_t index) const {
  char name[32];
  std::snprintf(name, sizeof name, "%06lld.h5", static_cast<long long>(index));
  return (std::filesystem::path(parts) / name).string();
}

// A part is written beside its name, synced and renamed: complete or absent, whenever the process
// dies. `body` gets the file and its /problems group.
void ResultsWriter::Impl::write_part(const std::string& path,
                                     const std::function<void(hid_t, hid_t)>& body) {
  const std::string staged = staging_path(path);
  try {
    guarded(hdf5_path, "write " + path, [&] {
      Handle file(H5Fcreate(staged.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      put_string(file.id(), "fingerprint", info.fingerprint);
      Handle problems = new_group(file.id(), "problems");
      body(file.id(), problems.id());
      problems.close();
      file.close();
    });
    if (!sync_path(staged, false))
      fail("results: cannot write ", path, " in ", hdf5_path, ": ", std::strerror(errno));
    if (std::rename(staged.c_str(), path.c_str()) != 0)
      fail("results: cannot move ", staged, " to ", path, ": ", std::strerror(errno));
    sync_path(parts, true);
  } catch (...) {
    std::remove(staged.c_str());
    throw;
  }
}

// A packed file to resume: its problems become parts again (the file is left as it is until the
// index replaces it).
void ResultsWriter::Impl::unpack(const ExistingResults& existing) {
  for (const FinishedProblem& problem : existing.problems) {
    FinishedProblem part = problem;
    part.part_file = part_path(written);
    write_part(part.part_file, [&](hid_t file, hid_t problems) {
      (void)file;
      const Handle source = open_readonly(hdf5_path);
      const std::string object = "problems/" + problem.name;
      must(H5Ocopy(source.id(), object.c_str(), problems, problem.name.c_str(), H5P_DEFAULT,
                   H5P_DEFAULT));
    });
    count(part);
  }
}

// The transcript of the problems finished so far, staged: it replaces the old one at publish.
void ResultsWriter::Impl::rebuild_transcript() {
  for (const FinishedProblem& problem : finished) {
    std::string entry;
    guarded(problem.part_file, "read the finished problem", [&] {
      const Handle file = open_readonly(problem.part_file);
      const Handle problems(H5Gopen2(file.id(), "problems", H5P_DEFAULT), H5Gclose);
      entry = stored_transcript_entry(problems.id(), problem.name);
    });
    if (!transcript.append(entry))
      fail("results: cannot write the transcript ", transcript_path, ": ", std::strerror(errno));
  }
}

// The index: the run's attributes and an external link per part (relative to the index's folder,
// where HDF5 looks for them), replaced atomically.
void ResultsWriter::Impl::write_index() {
  const std::string staged = staging_path(hdf5_path);
  const std::string folder = std::filesystem::path(parts).filename().string();
  try {
    guarded(hdf5_path, "write the index", [&] {
      Handle file(H5Fcreate(staged.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      put_run_attributes(file.id(), info, false);
      Handle problems = new_group(file.id(), "problems");
      for (const FinishedProblem& problem : finished) {
        const std::string target =
            folder + "/" + std::filesystem::path(problem.part_file).filename().string();
        const std::string object = "/problems/" + problem.name;
        must(H5Lcreate_external(target.c_str(), object.c_str(), problems.id(), problem.name.c_str(),
                                H5P_DEFAULT, H5P_DEFAULT));
      }
      problems.close();
      file.close();
    });
    if (!sync_path(staged, false))
      fail("results: cannot write the index ", hdf5_path, ": ", std::strerror(errno));
    publish_file(staged, hdf5_path);
  } catch (...) {
    std::remove(staged.c_str());
    throw;
  }
}

// The first time, an existing file is replaced only with `overwrite` (or when resuming: it is
// this run's); after that the file is ours.
void ResultsWriter::Impl::publish_file(const std::string& staged, const std::string& path) {
  if (published || resumed) {
    if (std::rename(staged.c_str(), path.c_str()) != 0)
      fail("results: cannot move ", staged, " to ", path, ": ", std::strerror(errno));
    return;
  }
  publish(staged, path, overwrite);
}

void ResultsWriter::Impl::publish_once() {
  if (published) return;
  publish_file(transcript_staged, transcript_path);
  published = true;
}

ResultsWriter::ResultsWriter(const std::string& hdf5_path, const std::string& transcript_path,
                             const RunInfo& info, bool overwrite, const ExistingResults* resume)
    : impl_(std::make_unique<Impl>()) {
  configure_hdf5();
  Impl& run = *impl_;
  run.hdf5_path = hdf5_path;
  run.transcript_path = transcript_path;
  run.info = info;
  HOGWILD_CHECK(!hdf5_path.empty(), "results: the HDF5 path is empty");
  HOGWILD_CHECK(!transcript_path.empty(), "results: the transcript path is empty");
  run.overwrite = overwrite;
  run.resumed = resume != nullptr && resume->found;
  require_file_or_nothing(hdf5_path);
  require_file_or_nothing(transcript_path);
  make_parent_folders(hdf5_path);
  make_parent_folders(transcript_path);
  run.parts = parts_folder(hdf5_path);
  run.transcript_staged = staging_path(transcript_path);

  std::error_code error;
  const bool had_parts =
      std::filesystem::is_directory(run.parts, error) && !part_files(run.parts).empty();
  if (!run.resumed && had_parts) {
    if (!overwrite)
      fail("results: ", run.parts,
           " holds an interrupted run's problems: rerun the same "
           "configuration to resume it, or add --overwrite to replace it");
  }
  run.lock_parts();
  if (!run.resumed && had_parts) {
    // --overwrite: the interrupted run's parts go (the lock proved no run is writing them).
    for (const std::string& part : part_files(run.parts)) std::remove(part.c_str());
  }
  if (!run.transcript.open_new(run.transcript_staged))
    fail("results: cannot create the transcript ", transcript_path, ": ", std::strerror(errno));
  run.open = true;
  if (!run.resumed) return;
  if (resume->complete) {
    // Parts left by a cut-short removal were all packed: they are written anew from the file.
    for (const std::string& part : part_files(run.parts)) std::remove(part.c_str());
    run.unpack(*resume);
  } else {
    for (const FinishedProblem& problem : resume->problems) run.count(problem);
  }
  run.rebuild_transcript();
  run.write_index();
  run.publish_once();
}

// Impl closes the files, without a summary, if close() was not called.
ResultsWriter::~ResultsWriter() = default;

void ResultsWriter::write(const ProblemResult& result) {
  Impl& run = *impl_;
  HOGWILD_CHECK(run.open, run.hdf5_path, ": cannot write problem '", result.id,
                "' after the results were closed");
  HOGWILD_CHECK(!run.ids.contains(result.id), run.hdf5_path, ": problem '", result.id,
                "' was already written");
  // Two ids may sanitize to one name ("a/b", "a_b"); the later one gets a number appended.
  const std::string base = hdf5_name(result.id);
  std::string name = base;
  for (int suffix = 2; run.names.contains(name); ++suffix)
    name = base + "#" + std::to_string(suffix);

  FinishedProblem part;
  part.id = result.id;
  part.question = result.question;
  part.name = name;
  part.part_file = run.part_path(run.written);
  part.index = run.written;
  part.correct = result.correct;
  part.failed = !result.error.empty();
  part.generated_tokens = result.generated_tokens;
  run.write_part(part.part_file, [&](hid_t file, hid_t problems) {
    write_problem(file, problems, result, name, run.written, run.hdf5_path);
  });
  run.count(part);
  run.session_tokens += result.generated_tokens;
  const std::string entry = transcript_entry(result);
  if (!run.transcript.append(entry))
    fail("results: cannot write the transcript of problem '", result.id, "' in ",
         run.transcript_path, ": ", std::strerror(errno));
  run.write_index();
  run.publish_once();
}

void ResultsWriter::write_timings(const std::vector<RankTiming>& timings) {
  Impl& run = *impl_;
  HOGWILD_CHECK(run.open, run.hdf5_path, ": the results were already closed");
  run.timings = timings;
}

// Packs every part into one file beside the results, then moves it in place and removes the
// parts: until the rename the index (and the parts) stay as they were.
void ResultsWriter::close(double total_seconds) {
  Impl& run = *impl_;
  HOGWILD_CHECK(run.open, run.hdf5_path, ": the results were already closed");
  const std::string staged = staging_path(run.hdf5_path);
  try {
    guarded(run.hdf5_path, "write the run summary", [&] {
      Handle file(H5Fcreate(staged.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      const hid_t root = file.id();
      put_run_attributes(root, run.info, true);
      Handle problems = new_group(root, "problems");
      for (const FinishedProblem& problem : run.finished) {
        const Handle part = open_readonly(problem.part_file);
        const std::string object = "problems/" + problem.name;
        must(H5Ocopy(part.id(), object.c_str(), problems.id(), problem.name.c_str(), H5P_DEFAULT,
                     H5P_DEFAULT));
      }
      problems.close();
      if (!run.timings.empty()) {
        const TableSchema schema = timing_schema();
        put_table(root, "timings", schema.file.id(), schema.memory.id(), run.timings.data(),
                  run.timings.size());
      }
      const double accuracy =
          run.checked > 0 ? static_cast<double>(run.correct) / static_cast<double>(run.checked)
                          : std::numeric_limits<double>::quiet_NaN();
      put_int64(root, "problems", run.written);
      put_int64(root, "failed_problems", run.failed);
      put_double(root, "accuracy", accuracy);
      put_double(root, "total_seconds", total_seconds);
      put_int64(root, "generated_tokens", run.generated_tokens);
      put_double(root, "tokens_per_second",
                 total_seconds > 0 ? static_cast<double>(run.session_tokens) / total_seconds : 0.0);
      file.close();
    });
    if (!sync_path(staged, false))
      fail("results: cannot write ", run.hdf5_path, ": ", std::strerror(errno));
    run.publish_file(staged, run.hdf5_path);
  } catch (...) {
    std::remove(staged.c_str());
    throw;
  }
  if (!run.published) run.publish_once();
  run.open = false;
  run.finished.clear();
  std::error_code error;
  std::filesystem::remove_all(run.parts, error);  // everything is in the packed file now
  if (!run.transcript.close())
    fail("results: cannot close the transcript ", run.transcript_path, ": ", std::strerror(errno));
}

void ResultsWriter::Impl::close_files() noexcept {
  open = false;
  static_cast<void>(transcript.close());
  // Nothing was published: this run leaves no file behind (and touched none).
  if (!published) {
    std::remove(transcript_staged.c_str());
    if (!resumed) {
      std::error_code error;
      std::filesystem::remove_all(parts, error);
    }
  }
  if (lock_fd >= 0) ::close(std::exchange(lock_fd, -1));
}

}  // namespace hogwild
