#include "xgrad/io/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <random>
#include <streambuf>
#include <string>
#include <system_error>

#include "xgrad/error.hpp"

namespace xgrad::io {
namespace {

[[noreturn]] void throw_os_error(const std::filesystem::path& path, const std::string& step,
                                 int error) {
    throw io_error(path.string() + ": " + step + ": " + std::generic_category().message(error));
}

/// Owns a POSIX file descriptor and closes it on destruction, unless close()
/// has already closed it.
class FileDescriptor {
  public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }

    int get() const { return fd_; }

    /// Closes the descriptor and returns close()'s errno, or 0 on success.
    /// Network file systems may report a failed write only here.
    int close() {
        const int result = ::close(fd_);
        fd_ = -1;
        return result == 0 ? 0 : errno;
    }

  private:
    int fd_;
};

/// Writes all of `data`, retrying short writes and EINTR. Returns 0 or errno.
int write_all(int fd, const char* data, std::size_t size) {
    // On Linux, one write() call transfers at most 0x7ffff000 bytes.
    constexpr std::size_t kMaxChunk = std::size_t{1} << 30;
    while (size > 0) {
        const ssize_t written = ::write(fd, data, std::min(size, kMaxChunk));
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        data += written;
        size -= static_cast<std::size_t>(written);
    }
    return 0;
}

/// A stream buffer that writes to a file descriptor and keeps the errno of
/// the first failed write, so the error can name the OS error. After a
/// failure every later write fails too.
class FdOutputBuffer : public std::streambuf {
  public:
    explicit FdOutputBuffer(int fd) : fd_(fd), buffer_(kBufferSize) {
        setp(buffer_.data(), buffer_.data() + buffer_.size());
    }

    int error() const { return error_; }

  protected:
    int_type overflow(int_type ch) override {
        if (!flush_buffer()) {
            return traits_type::eof();
        }
        if (!traits_type::eq_int_type(ch, traits_type::eof())) {
            *pptr() = traits_type::to_char_type(ch);
            pbump(1);
        }
        return traits_type::not_eof(ch);
    }

    std::streamsize xsputn(const char* data, std::streamsize count) override {
        if (count <= 0) {
            return 0;  // An empty tensor's data pointer may be null, which memcpy must not get.
        }
        if (count < static_cast<std::streamsize>(kBufferSize)) {
            if (count > epptr() - pptr() && !flush_buffer()) {
                return 0;
            }
            std::memcpy(pptr(), data, static_cast<std::size_t>(count));
            pbump(static_cast<int>(count));
            return count;
        }
        // Large blocks, such as tensor data, skip the buffer.
        if (!flush_buffer() || !record(write_all(fd_, data, static_cast<std::size_t>(count)))) {
            return 0;
        }
        return count;
    }

    int sync() override { return flush_buffer() ? 0 : -1; }

  private:
    static constexpr std::size_t kBufferSize = 64 * 1024;

    bool flush_buffer() {
        if (error_ != 0) {
            return false;
        }
        const auto pending = static_cast<std::size_t>(pptr() - pbase());
        setp(buffer_.data(), buffer_.data() + buffer_.size());
        return record(write_all(fd_, buffer_.data(), pending));
    }

    bool record(int error) {
        if (error_ == 0) {
            error_ = error;
        }
        return error_ == 0;
    }

    int fd_;
    int error_ = 0;
    std::vector<char> buffer_;
};

std::string random_suffix() {
    // The counter makes names unique within the process even if
    // std::random_device is deterministic. O_EXCL rejects any remaining
    // collision, and the caller retries with a new name.
    static std::atomic<std::uint64_t> counter{0};
    std::random_device device;
    const std::uint64_t value = (std::uint64_t{device()} << 32) ^ device() ^
                                (counter.fetch_add(1) * 0x9E3779B97F4A7C15ULL) ^
                                static_cast<std::uint64_t>(::getpid());
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
    return text;
}

/// Creates a new, empty temporary file next to `path` and returns its
/// descriptor, storing its path in `temporary_path`.
int create_temporary_file(const std::filesystem::path& path,
                          std::filesystem::path& temporary_path) {
    const std::filesystem::path directory = path.parent_path();
    const std::string prefix = "." + path.filename().string() + ".tmp-";
    constexpr int kAttempts = 100;
    int error = 0;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
        temporary_path = directory / (prefix + random_suffix());
        const int fd =
            ::open(temporary_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            return fd;
        }
        error = errno;
        if (error != EEXIST) {
            break;
        }
    }
    throw_os_error(path, "cannot create temporary file " + temporary_path.string(), error);
}

/// Fsyncs the directory holding `path`, so that a rename into it is durable.
void sync_directory(const std::filesystem::path& path) {
    const std::filesystem::path parent = path.parent_path();
    const std::filesystem::path directory = parent.empty() ? std::filesystem::path(".") : parent;
    const std::string step_prefix = "the file was replaced, but ";

    FileDescriptor fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) {
        throw_os_error(path, step_prefix + "opening directory " + directory.string() + " failed",
                       errno);
    }
    // File systems that cannot sync a directory report EINVAL. The rename has
    // happened, so the new file is in place and there is nothing more to do.
    if (::fsync(fd.get()) != 0 && errno != EINVAL) {
        throw_os_error(path, step_prefix + "fsync of directory " + directory.string() + " failed",
                       errno);
    }
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& write) {
    if (path.filename().empty()) {
        throw io_error(path.string() + ": cannot write a file: the path names a directory");
    }

    std::filesystem::path temporary_path;
    FileDescriptor fd(create_temporary_file(path, temporary_path));
    try {
        FdOutputBuffer buffer(fd.get());
        std::ostream out(&buffer);
        write(out);
        out.flush();
        if (!out) {
            if (buffer.error() != 0) {
                throw_os_error(path, "writing " + temporary_path.string() + " failed",
                               buffer.error());
            }
            throw io_error(path.string() + ": writing " + temporary_path.string() +
                           " failed: the writer left the stream in a failed state");
        }
        if (::fsync(fd.get()) != 0) {
            throw_os_error(path, "fsync of " + temporary_path.string() + " failed", errno);
        }
        if (const int error = fd.close(); error != 0) {
            throw_os_error(path, "closing " + temporary_path.string() + " failed", error);
        }
        if (::rename(temporary_path.c_str(), path.c_str()) != 0) {
            throw_os_error(path, "renaming " + temporary_path.string() + " over it failed", errno);
        }
    } catch (...) {
        ::unlink(temporary_path.c_str());
        throw;
    }
    sync_directory(path);
}

void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes) {
    write_file_atomically(path, [bytes](std::ostream& out) {
        out.write(reinterpret_cast<const char*>(bytes.data()),
                  static_cast<std::streamsize>(bytes.size()));
    });
}

std::vector<std::byte> read_file(const std::filesystem::path& path) {
    FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        throw_os_error(path, "cannot open", errno);
    }
    struct stat status {};
    if (::fstat(fd.get(), &status) != 0) {
        throw_os_error(path, "cannot read file status", errno);
    }
    if (!S_ISREG(status.st_mode)) {
        throw io_error(path.string() + ": cannot read: not a regular file");
    }

    std::vector<std::byte> bytes(static_cast<std::size_t>(status.st_size));
    std::size_t filled = 0;
    while (filled < bytes.size()) {
        const ssize_t count = ::read(fd.get(), bytes.data() + filled, bytes.size() - filled);
        if (count < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_os_error(path, "read failed", errno);
        }
        if (count == 0) {
            break;  // The file shrank after fstat, so return the bytes read.
        }
        filled += static_cast<std::size_t>(count);
    }
    bytes.resize(filled);
    return bytes;
}

}  // namespace xgrad::io
