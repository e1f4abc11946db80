#pragma once

// Whole-file reads and atomic writes: the file layer under the .npy and .npz
// savers. Uses POSIX calls (open, fsync, rename), so it builds on Linux and
// other POSIX systems only.

#include <cstddef>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <span>
#include <vector>

namespace xgrad::io {

/// Writes a file so that readers of `path` see either the previous file or
/// the complete new one, never a partial file, even if the process or the
/// machine stops in the middle.
///
/// `write` receives a stream to a new temporary file in the directory of
/// `path`, named `.<file name>.tmp-<random hex>`. When `write` returns, the
/// temporary file is flushed, fsynced and renamed over `path`, and then the
/// directory is fsynced so that the rename itself survives a crash. The new
/// file gets mode 0666 minus the umask, as with std::ofstream; the mode of a
/// previous file is not kept. When `path` is a symbolic link, the link itself
/// is replaced, not the file it points to.
///
/// Up to and including the rename, a failure removes the temporary file and
/// leaves `path` as it was. An OS error throws io_error naming `path`, the
/// step that failed and the system's error text (strerror). An exception
/// thrown by `write` propagates unchanged. If only the final directory fsync
/// fails, `path` already contains the new file, and the io_error message
/// says so.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& write);

/// Writes `bytes` to `path` atomically, as the overload above does.
void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes);

/// Reads a whole regular file. Throws io_error naming `path` and the system's
/// error text when the file cannot be opened or read, or is not a regular file.
std::vector<std::byte> read_file(const std::filesystem::path& path);

}  // namespace xgrad::io
