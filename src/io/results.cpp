#include "io/results.h"

#include <H5Cpp.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <set>
#include <utility>

#include "common/error.h"

namespace hogwild {
namespace {

// The innermost message of HDF5's error stack (e.g. "unable to open file: name = ..., errno = 13,
// error message = 'Permission denied'"): H5::Exception::getDetailMsg() only names the API call.
herr_t keep_innermost(unsigned position, const H5E_error2_t* error, void* data) {
  if (position == 0 && error != nullptr && error->desc != nullptr)
    *static_cast<std::string*>(data) = error->desc;
  return 0;
}

std::string describe(const H5::Exception& error) {
  std::string detail = error.getDetailMsg();
  std::string innermost;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, &innermost);
  if (!innermost.empty() && innermost != detail) detail += " (" + innermost + ")";
  return detail;
}

// Runs HDF5 calls, turning H5::Exception into hogwild::Error naming the file and the object.
template <typename Body>
void guarded(const std::string& path, const std::string& what, Body&& body) {
  try {
    std::forward<Body>(body)();
  } catch (const H5::Exception& error) {
    fail(path, ": cannot ", what, ": ", describe(error));
  }
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

// A link name may not contain '/' (the path separator) and may not be "." or "..".
std::string hdf5_name(const std::string& id) {
  std::string name = id;
  for (char& c : name)
    if (c == '/') c = '_';
  if (name.find_first_not_of('.') == std::string::npos) name = "_" + name;
  return name;
}

// A UTF-8 string type for `value`: variable-length, or, when the value holds a NUL (a variable-
// length HDF5 string ends at its first NUL), fixed-length of exactly its bytes, so text from data
// is stored whole (h5py reads it as bytes; a NUL at the very end reads back stripped).
H5::StrType utf8_string_type(const std::string& value) {
  const bool has_nul = value.find('\0') != std::string::npos;
  H5::StrType type(H5::PredType::C_S1, has_nul ? value.size() : H5T_VARIABLE);
  if (has_nul) type.setStrpad(H5T_STR_NULLPAD);
  type.setCset(H5T_CSET_UTF8);
  return type;
}

// Writes `value` with `write(type, buffer)`: the pointer for a variable-length string, the bytes
// themselves for a fixed-length one.
template <typename Write>
void write_string(const std::string& value, Write&& write) {
  const H5::StrType type = utf8_string_type(value);
  if (type.isVariableStr()) {
    const char* text = value.c_str();  // variable-length strings are written as char* pointers
    write(type, static_cast<const void*>(&text));
  } else {
    write(type, static_cast<const void*>(value.data()));
  }
}

void put_string(H5::H5Object& object, const std::string& name, const std::string& value) {
  write_string(value, [&](const H5::StrType& type, const void* buffer) {
    H5::Attribute attribute = object.createAttribute(name, type, H5::DataSpace(H5S_SCALAR));
    attribute.write(type, buffer);
  });
}

void put_int64(H5::H5Object& object, const std::string& name, int64_t value) {
  H5::Attribute attribute =
      object.createAttribute(name, H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR));
  attribute.write(H5::PredType::NATIVE_INT64, &value);
}

void put_int8(H5::H5Object& object, const std::string& name, int8_t value) {
  H5::Attribute attribute =
      object.createAttribute(name, H5::PredType::STD_I8LE, H5::DataSpace(H5S_SCALAR));
  attribute.write(H5::PredType::NATIVE_INT8, &value);
}

void put_double(H5::H5Object& object, const std::string& name, double value) {
  H5::Attribute attribute =
      object.createAttribute(name, H5::PredType::IEEE_F64LE, H5::DataSpace(H5S_SCALAR));
  attribute.write(H5::PredType::NATIVE_DOUBLE, &value);
}

void put_string_dataset(H5::Group& group, const std::string& name, const std::string& value) {
  write_string(value, [&](const H5::StrType& type, const void* buffer) {
    H5::DataSet dataset = group.createDataSet(name, type, H5::DataSpace(H5S_SCALAR));
    dataset.write(buffer, type);
  });
}

H5::DataSpace rows(size_t count) {
  const hsize_t dims[1] = {static_cast<hsize_t>(count)};
  return H5::DataSpace(1, dims);
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
  H5::CompType memory, file;
};

template <typename Record>
TableSchema table_schema(std::initializer_list<Field> fields) {
  size_t file_size = 0;
  for (const Field& field : fields) file_size += field.is_int32 ? sizeof(int32_t) : sizeof(double);
  TableSchema schema{H5::CompType(sizeof(Record)), H5::CompType(file_size)};
  size_t offset = 0;
  for (const Field& field : fields) {
    schema.memory.insertMember(
        field.name, field.offset,
        field.is_int32 ? H5::PredType::NATIVE_INT32 : H5::PredType::NATIVE_DOUBLE);
    schema.file.insertMember(field.name, offset,
                             field.is_int32 ? H5::PredType::STD_I32LE : H5::PredType::IEEE_F64LE);
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

const char* correctness(int correct) {
  if (correct == 1) return "correct";
  if (correct == 0) return "wrong";
  return "not checked";
}

}  // namespace

struct ResultsWriter::Impl {
  std::string hdf5_path;
  std::string transcript_path;
  std::string hdf5_staged, transcript_staged;  // the files' names until published
  bool overwrite = false;
  bool published = false;
  H5::H5File file;
  H5::Group problems;
  std::ofstream transcript;
  bool open = false;
  std::set<std::string> ids;
  std::set<std::string> names;
  int64_t written = 0;
  int64_t checked = 0;  // problems with a reference (correct != -1)
  int64_t correct = 0;
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
  H5::Exception::dontPrint();  // errors reach the user as one hogwild::Error line instead
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

  guarded(hdf5_path, "create the file",
          [&] { run.file = H5::H5File(run.hdf5_staged, H5F_ACC_EXCL); });
  run.open = true;
  guarded(hdf5_path, "write the run attributes", [&] {
    H5::Group root = run.file.openGroup("/");
    put_string(root, "config", info.config_text);
    put_string(root, "model", info.model);
    put_string(root, "layout", info.layout);
    put_int64(root, "workers", info.workers);
    put_string(root, "created", utc_now_iso8601());
    put_string(root, "hogwild_version", HOGWILD_VERSION);
    run.problems = run.file.createGroup("problems");
    run.file.flush(H5F_SCOPE_GLOBAL);
  });

  run.transcript.open(run.transcript_staged, std::ios::out | std::ios::trunc | std::ios::binary);
  if (!run.transcript)
    fail(transcript_path, ": cannot open the transcript for writing: ", std::strerror(errno));
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
  if (result.correct != -1) {
    ++run.checked;
    if (result.correct == 1) ++run.correct;
  }
  run.generated_tokens += result.generated_tokens;
  run.append_transcript(result);
  run.publish_once();
}

void ResultsWriter::Impl::write_problem(const ProblemResult& result, const std::string& name) {
  const std::string problem = "problem '" + result.id + "'";
  const std::string where = "write " + problem;
  H5::Group group;
  guarded(hdf5_path, where, [&] {
    group = problems.createGroup(name);
    put_string(group, "id", result.id);
    put_string(group, "question", result.question);
    put_string(group, "reference_answer", result.reference_answer);
    put_string(group, "answer", result.answer);
    put_int8(group, "correct", static_cast<int8_t>(result.correct));
    put_string(group, "stop_reason", result.stop_reason);
    put_int64(group, "forward_passes", result.forward_passes);
    put_int64(group, "generated_tokens", result.generated_tokens);
    put_double(group, "seconds", result.seconds);
    put_int64(group, "index", written);
  });

  guarded(hdf5_path, where + " workers", [&] {
    H5::Group workers = group.createGroup("workers");
    std::set<std::string> worker_names;
    for (const WorkerRecord& worker : result.workers) {
      const std::string worker_name = hdf5_name(worker.name);
      HOGWILD_CHECK(worker_names.insert(worker_name).second, hdf5_path, ": ", problem,
                    " has two workers named '", worker.name, "'");
      H5::Group folder = workers.createGroup(worker_name);
      H5::DataSet tokens =
          folder.createDataSet("tokens", H5::PredType::STD_I32LE, rows(worker.tokens.size()));
      // H5Dwrite rejects a null buffer (an empty vector's data()) over H5S_ALL: skip empty lists.
      if (!worker.tokens.empty()) tokens.write(worker.tokens.data(), H5::PredType::NATIVE_INT32);
      put_string_dataset(folder, "text", worker.text);
    }
  });

  guarded(hdf5_path, where + " steps", [&] {
    const TableSchema schema = step_schema();
    H5::DataSet steps = group.createDataSet("steps", schema.file, rows(result.steps.size()));
    if (!result.steps.empty()) steps.write(result.steps.data(), schema.memory);
  });

  guarded(hdf5_path, where + " transcript", [&] {
    put_string_dataset(group, "transcript", result.transcript);
    // Everything on disk now: a run killed later still leaves this problem readable.
    file.flush(H5F_SCOPE_GLOBAL);
  });
}

void ResultsWriter::Impl::append_transcript(const ProblemResult& result) {
  transcript << "=== problem " << result.id << " ===\n" << result.transcript;
  if (!result.transcript.empty() && result.transcript.back() != '\n') transcript << '\n';
  transcript << "=== answer: " << (result.answer.empty() ? "(none)" : result.answer);
  if (!result.reference_answer.empty())
    transcript << " (reference " << result.reference_answer << ", " << correctness(result.correct)
               << ")";
  transcript << "; stop: " << result.stop_reason << "; " << result.generated_tokens << " tokens in "
             << result.seconds << " s ===\n\n";
  transcript.flush();
  HOGWILD_CHECK(transcript.good(), transcript_path, ": cannot write the transcript of problem '",
                result.id, "'");
}

void ResultsWriter::write_timings(const std::vector<RankTiming>& timings) {
  Impl& run = *impl_;
  HOGWILD_CHECK(run.open, run.hdf5_path, ": the results were already closed");
  guarded(run.hdf5_path, "write the timings", [&] {
    const TableSchema schema = timing_schema();
    H5::DataSet table = run.file.createDataSet("timings", schema.file, rows(timings.size()));
    if (!timings.empty()) table.write(timings.data(), schema.memory);
    run.file.flush(H5F_SCOPE_GLOBAL);
  });
}

void ResultsWriter::close(double total_seconds) {
  Impl& run = *impl_;
  HOGWILD_CHECK(run.open, run.hdf5_path, ": the results were already closed");
  guarded(run.hdf5_path, "write the run summary", [&] {
    H5::Group root = run.file.openGroup("/");
    const double accuracy =
        run.checked > 0 ? static_cast<double>(run.correct) / static_cast<double>(run.checked)
                        : std::numeric_limits<double>::quiet_NaN();
    put_int64(root, "problems", run.written);
    put_double(root, "accuracy", accuracy);
    put_double(root, "total_seconds", total_seconds);
    put_int64(root, "generated_tokens", run.generated_tokens);
    put_double(root, "tokens_per_second",
               total_seconds > 0 ? static_cast<double>(run.generated_tokens) / total_seconds : 0.0);
    run.file.flush(H5F_SCOPE_GLOBAL);
  });
  run.transcript.flush();
  run.publish_once();
  run.open = false;
  guarded(run.hdf5_path, "close the file", [&] {
    run.problems.close();
    run.file.close();
  });
  run.transcript.close();
  HOGWILD_CHECK(!run.transcript.fail(), run.transcript_path, ": cannot close the transcript");
}

void ResultsWriter::Impl::close_files() noexcept {
  try {
    if (open) {
      open = false;
      problems.close();
      file.close();
    }
  } catch (...) {
    // A destructor must not throw; what was flushed is already safe on disk.
  }
  try {
    if (transcript.is_open()) transcript.close();
  } catch (...) {
  }
  // Nothing was published: this run leaves no file behind (and touched none).
  if (!published) {
    std::remove(hdf5_staged.c_str());
    std::remove(transcript_staged.c_str());
  }
}

}  // namespace hogwild
