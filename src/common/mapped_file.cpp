#include "common/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace hogwild {

namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a plain file";
}

// Opens `path` read-only and checks that it is a regular file. O_NONBLOCK: opening a FIFO for
// reading would otherwise wait for a writer forever (it has no effect on a regular file's reads).
int open_regular_file(const std::string& path, struct stat& info) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  if (::fstat(fd, &info) != 0) {
    const int saved = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(saved));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    if (S_ISDIR(info.st_mode)) fail(path, ": is a directory, expected a regular file");
    fail(path, ": not a regular file (", file_kind(info.st_mode), ")");
  }
  return fd;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  struct stat info {};
  const int fd = open_regular_file(path, info);
  size_ = static_cast<size_t>(info.st_size);
  if (size_ > 0) {
    void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped == MAP_FAILED) {
      const int saved = errno;
      ::close(fd);
      fail(path, ": cannot map: ", std::strerror(saved));
    }
    data_ = static_cast<const uint8_t*>(mapped);
  }
  ::close(fd);  // the mapping stays valid after close
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(other.path_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open: ", std::strerror(errno));
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) fail(path, ": read error");
  return content.str();
}

std::string read_regular_text_file(const std::string& path, size_t max_bytes) {
  struct stat info {};
  const int fd = open_regular_file(path, info);
  const auto size = static_cast<uint64_t>(info.st_size);
  if (size > max_bytes) {
    ::close(fd);
    fail(path, ": is ", size, " bytes, more than the ", max_bytes, " such a file can need");
  }
  std::string content(static_cast<size_t>(size), '\0');
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t got = ::read(fd, content.data() + done, content.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int saved = errno;
      ::close(fd);
      fail(path, ": read error: ", std::strerror(saved));
    }
    if (got == 0) {
      ::close(fd);
      fail(path, ": file shrank while being read");
    }
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  return content;
}

}  // namespace hogwild
