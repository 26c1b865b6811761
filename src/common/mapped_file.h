// A read-only memory-mapped file: model files are mapped, never read into heap copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace hogwild {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws hogwild::Error naming the path if it cannot be opened or mapped, or is not a regular
  // file (a FIFO or a device is refused at once instead of blocking or mapping nothing).
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) text file; throws naming the path if it cannot.
std::string read_text_file(const std::string& path);
// The same for files a model is made of (config.json, an index): only a regular file of at most
// `max_bytes` is read; anything else is an error naming the path, raised before reading.
std::string read_regular_text_file(const std::string& path, size_t max_bytes);

}  // namespace hogwild
