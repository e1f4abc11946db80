#pragma once

// Helpers shared by the io test files: a temporary directory, byte buffers,
// tensor comparison, CRC-32 for patching archives, and running NumPy.

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xgrad/io.hpp"
#include "xgrad/xgrad.hpp"

namespace xgrad::testing {

/// A new directory under the system's temporary directory, removed with
/// everything in it when the object is destroyed.
class TemporaryDirectory {
  public:
    TemporaryDirectory() {
        static std::atomic<int> counter{0};
        std::random_device device;
        const std::string name = "xgrad-io-test-" + std::to_string(::getpid()) + "-" +
                                 std::to_string(counter++) + "-" + std::to_string(device());
        path_ = std::filesystem::temp_directory_path() / name;
        std::filesystem::create_directories(path_);
    }
    TemporaryDirectory(const TemporaryDirectory&) = delete;
    TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
    ~TemporaryDirectory() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

    /// Names of the files in the directory, sorted.
    std::vector<std::string> file_names() const {
        std::vector<std::string> names;
        for (const auto& entry : std::filesystem::directory_iterator(path_)) {
            names.push_back(entry.path().filename().string());
        }
        std::sort(names.begin(), names.end());
        return names;
    }

  private:
    std::filesystem::path path_;
};

inline std::vector<std::byte> to_bytes(std::string_view text) {
    const auto* begin = reinterpret_cast<const std::byte*>(text.data());
    return {begin, begin + text.size()};
}

inline std::string to_text(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

inline std::string read_text(const std::filesystem::path& path) {
    return to_text(io::read_file(path));
}

inline void write_text(const std::filesystem::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

/// True when both tensors have the same dtype, shape and bytes, so NaN
/// payloads and the sign of zero count too.
inline bool same_tensor(const Tensor& a, const Tensor& b) {
    if (a.dtype() != b.dtype() || a.shape() != b.shape()) {
        return false;
    }
    const std::vector<std::byte> a_bytes = io::encode_npy(a);
    const std::vector<std::byte> b_bytes = io::encode_npy(b);
    return a_bytes == b_bytes;
}

/// Returns a tensor of `dtype` and `shape` whose elements all differ.
/// Floating tensors with at least four elements start with NaN, infinity,
/// -infinity and -0.0.
inline Tensor make_tensor(Dtype dtype, const Shape& shape) {
    return detail::visit_dtype(dtype, [&](auto zero) {
        using T = decltype(zero);
        xt::xarray<T> values(shape);
        for (std::size_t i = 0; i < values.size(); ++i) {
            if constexpr (std::is_floating_point_v<T>) {
                values.flat(i) = static_cast<T>(0.25 * static_cast<double>(i) - 3.0);
            } else if constexpr (sizeof(T) == 1) {
                values.flat(i) = static_cast<T>(static_cast<int>(i * 37 + 5) % 256);  // wraps
            } else {
                values.flat(i) = static_cast<T>(i) * 1'000'000'000'007LL - 5;
            }
        }
        if constexpr (std::is_floating_point_v<T>) {
            if (values.size() >= 4) {
                values.flat(0) = std::numeric_limits<T>::quiet_NaN();
                values.flat(1) = std::numeric_limits<T>::infinity();
                values.flat(2) = -std::numeric_limits<T>::infinity();
                values.flat(3) = T(-0.0);
            }
        }
        return Tensor(std::move(values));
    });
}

/// Returns the message of the io_error that `action` throws, or a note that
/// none was thrown, so tests can check several parts of one message.
inline std::string io_error_message(const std::function<void()>& action) {
    try {
        action();
    } catch (const io_error& error) {
        return error.what();
    }
    return "(no io_error was thrown)";
}

inline bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

/// CRC-32 as ZIP uses it (reflected polynomial 0xEDB88320), computed bit by
/// bit so the tests do not share zlib with the code under test.
inline std::uint32_t crc32_of(std::span<const std::byte> bytes) {
    std::uint32_t crc = 0xFFFFFFFF;
    for (const std::byte byte : bytes) {
        crc ^= std::to_integer<std::uint32_t>(byte);
        for (int bit = 0; bit < 8; ++bit) {
            crc = (crc >> 1) ^ (0xEDB88320 & (0u - (crc & 1)));
        }
    }
    return ~crc;
}

inline std::uint16_t get_u16(std::span<const std::byte> bytes, std::size_t offset) {
    return static_cast<std::uint16_t>(std::to_integer<unsigned>(bytes[offset]) |
                                      std::to_integer<unsigned>(bytes[offset + 1]) << 8);
}

inline std::uint32_t get_u32(std::span<const std::byte> bytes, std::size_t offset) {
    return get_u16(bytes, offset) | std::uint32_t{get_u16(bytes, offset + 2)} << 16;
}

inline void put_u16(std::vector<std::byte>& bytes, std::size_t offset, std::uint16_t value) {
    bytes[offset] = static_cast<std::byte>(value & 0xFF);
    bytes[offset + 1] = static_cast<std::byte>(value >> 8);
}

inline void put_u32(std::vector<std::byte>& bytes, std::size_t offset, std::uint32_t value) {
    put_u16(bytes, offset, static_cast<std::uint16_t>(value & 0xFFFF));
    put_u16(bytes, offset + 2, static_cast<std::uint16_t>(value >> 16));
}

/// Offsets of every occurrence of a 4-byte ZIP signature such as "PK\1\2".
inline std::vector<std::size_t> find_all(std::span<const std::byte> bytes,
                                         std::string_view pattern) {
    std::vector<std::size_t> offsets;
    const std::string text = to_text(bytes);
    for (std::size_t at = text.find(pattern); at != std::string::npos;
         at = text.find(pattern, at + 1)) {
        offsets.push_back(at);
    }
    return offsets;
}

// --- NumPy ----------------------------------------------------------------------

/// The interpreter that scripts/setup provides numpy for. The python3 first
/// on PATH may be another one, without numpy.
inline const std::string kPython = "/usr/bin/python3";

/// Fails the current test case unless /usr/bin/python3 can import numpy.
inline void require_numpy() {
    if (!std::filesystem::exists(kPython)) {
        FAIL(kPython << " is missing; run scripts/setup to install python3-numpy");
    }
    const std::string command = kPython + " -c 'import numpy' 2>/dev/null";
    if (std::system(command.c_str()) != 0) {
        FAIL(kPython << " cannot import numpy; run scripts/setup to install python3-numpy");
    }
}

inline std::string shell_quote(const std::string& text) {
    std::string quoted = "'";
    for (const char c : text) {
        quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return quoted + "'";
}

/// Runs `script` with /usr/bin/python3 from a file in `directory`, passing
/// the directory's path as sys.argv[1], and returns its exit code. Python
/// prints the traceback of a failed assert to stderr, which shows in the
/// test output.
inline int run_python(const TemporaryDirectory& directory, const std::string& script) {
    const std::filesystem::path script_path = directory / "script.py";
    write_text(script_path, script);
    const std::string command = kPython + " " + shell_quote(script_path.string()) + " " +
                                shell_quote(directory.path().string());
    const int status = std::system(command.c_str());
    std::filesystem::remove(script_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace xgrad::testing
