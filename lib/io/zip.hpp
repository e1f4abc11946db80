#pragma once

// ZIP archive records under the .npz reader and writer: the headers written
// around each stored entry, and a reader that checks an archive's central
// directory and entries against its length. Private to the library.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xgrad::detail {

constexpr std::size_t kZipLocalHeaderSize = 30;
constexpr std::size_t kZipCentralHeaderSize = 46;

// Without ZIP64, 0xFFFF entries and 0xFFFFFFFF sizes or offsets mean "see
// the ZIP64 record", so the largest values without ZIP64 are one less.
constexpr std::uint64_t kZipMaxEntries = 0xFFFE;
constexpr std::uint64_t kZipMaxSize = 0xFFFFFFFE;

/// An entry to write without compression ("stored").
struct ZipStoredEntry {
    std::string name;
    std::uint32_t crc = 0;
    std::uint32_t size = 0;
    std::uint32_t offset = 0;  // of the local header
};

/// Returns the local file header for `entry`, its name included. The
/// entry's data follows it directly.
std::string zip_local_header(const ZipStoredEntry& entry);

/// Returns the central directory header for `entry`, its name included.
std::string zip_central_header(const ZipStoredEntry& entry);

/// Returns the end of central directory record of an archive with `count`
/// entries, whose central directory has this size and offset.
std::string zip_end_record(std::uint16_t count, std::uint32_t directory_size,
                           std::uint32_t directory_offset);

/// An entry of an archive, as its central directory describes it.
struct ZipEntry {
    std::string name;
    std::uint16_t flags = 0;  // the general purpose bit flags
    std::uint16_t method = 0;
    std::uint32_t crc = 0;
    std::uint32_t compressed_size = 0;
    std::uint32_t size = 0;
    std::uint32_t local_offset = 0;
    std::size_t data_offset = 0;  // where the entry's (compressed) data starts
};

/// Reads the entries of a ZIP archive in central directory order.
///
/// Checks the end record and the central directory against the archive's
/// length, every local header against its central directory record, that
/// names are unique and that no entries overlap. Throws io_error
/// "<source>: <problem>" or "<source>: entry '<name>': <problem>" for a
/// truncated or corrupt archive, ZIP64, split archives, encryption and
/// compression methods other than stored (0) and deflate (8).
std::vector<ZipEntry> read_zip_directory(std::span<const std::byte> archive,
                                         std::string_view source);

/// Returns the uncompressed bytes of an entry from read_zip_directory,
/// checked against its size and CRC-32. Stored data is returned in place.
/// Deflated data is inflated into `inflated`, which must outlive the result.
/// Throws io_error naming `source` and the entry.
std::span<const std::byte> read_zip_entry(std::span<const std::byte> archive, const ZipEntry& entry,
                                          std::string_view source,
                                          std::vector<std::byte>& inflated);

/// Continues the CRC-32 `crc` over `bytes`. Start with 0.
std::uint32_t update_crc32(std::uint32_t crc, std::span<const std::byte> bytes);

/// Quotes an entry name for a message, escaping control characters so a
/// hostile name cannot break the message's layout.
std::string quote_entry_name(std::string_view name);

/// Returns "<source>: entry '<name>'", the start of messages about one entry.
std::string zip_entry_source(std::string_view source, std::string_view name);

}  // namespace xgrad::detail
