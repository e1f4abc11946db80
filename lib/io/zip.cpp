#include "zip.hpp"

// ZIP records as specified in PKWARE's APPNOTE.TXT: section 4.3.7 (local
// file header), 4.3.12 (central directory) and 4.3.16 (end of central
// directory record). All integers are little-endian.

#define ZLIB_CONST
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <unordered_set>

#include "xgrad/error.hpp"

namespace xgrad::detail {

std::string quote_entry_name(std::string_view name) {
    std::string text = "'";
    for (const char c : name) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7F) {
            char escape[5];
            std::snprintf(escape, sizeof escape, "\\x%02x", byte);
            text += escape;
        } else {
            text += c;
        }
    }
    return text + "'";
}

std::string zip_entry_source(std::string_view source, std::string_view name) {
    return std::string(source) + ": entry " + quote_entry_name(name);
}

namespace {

constexpr std::uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr std::uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr std::uint32_t kEndRecordSignature = 0x06054b50;
constexpr std::uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr std::size_t kLocalHeaderSize = kZipLocalHeaderSize;
constexpr std::size_t kCentralHeaderSize = kZipCentralHeaderSize;
constexpr std::size_t kEndRecordSize = 22;
constexpr std::size_t kZip64LocatorSize = 20;
constexpr std::size_t kMaxCommentSize = 0xFFFF;

constexpr std::uint16_t kMethodStored = 0;
constexpr std::uint16_t kMethodDeflated = 8;
constexpr std::uint16_t kFlagEncrypted = 1 << 0;
constexpr std::uint16_t kFlagDataDescriptor = 1 << 3;
constexpr std::uint16_t kFlagStrongEncryption = 1 << 6;
constexpr std::uint16_t kFlagUtf8Name = 1 << 11;

// Version 2.0 of the specification covers stored and deflated files. The
// high byte of "version made by" is the host system. It is 3 (Unix), so
// unzip reads the external attributes as a Unix file mode.
constexpr std::uint16_t kVersionNeeded = 20;
constexpr std::uint16_t kVersionMadeBy = (3 << 8) | 20;
constexpr std::uint32_t kExternalAttributes = 0100644u << 16;  // regular file, rw-r--r--
constexpr std::uint16_t kDosTime = 0;                          // 00:00:00
constexpr std::uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;    // 1980-01-01

// Deflate emits at most 258 bytes for 2 bits of input (a length and a
// distance code of 1 bit each), so at most 1032 bytes per input byte.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

[[noreturn]] void fail(std::string_view source, const std::string& problem) {
    throw io_error(std::string(source) + ": " + problem);
}

[[noreturn]] void fail_entry(std::string_view source, std::string_view name,
                             const std::string& problem) {
    throw io_error(zip_entry_source(source, name) + ": " + problem);
}

bool is_ascii(std::string_view text) {
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

void put_u16(std::string& out, std::uint16_t value) {
    out += static_cast<char>(value & 0xFF);
    out += static_cast<char>(value >> 8);
}

void put_u32(std::string& out, std::uint32_t value) {
    put_u16(out, static_cast<std::uint16_t>(value & 0xFFFF));
    put_u16(out, static_cast<std::uint16_t>(value >> 16));
}

std::uint16_t name_flags(const std::string& name) {
    return is_ascii(name) ? 0 : kFlagUtf8Name;
}

// --- reading ---------------------------------------------------------------------

std::uint16_t read_u16(std::span<const std::byte> bytes, std::size_t offset) {
    return static_cast<std::uint16_t>(std::to_integer<unsigned>(bytes[offset]) |
                                      std::to_integer<unsigned>(bytes[offset + 1]) << 8);
}

std::uint32_t read_u32(std::span<const std::byte> bytes, std::size_t offset) {
    return read_u16(bytes, offset) | std::uint32_t{read_u16(bytes, offset + 2)} << 16;
}

std::string read_string(std::span<const std::byte> bytes, std::size_t offset, std::size_t size) {
    return {reinterpret_cast<const char*>(bytes.data()) + offset, size};
}

struct CentralDirectory {
    std::size_t offset = 0;
    std::size_t size = 0;
    std::size_t count = 0;
};

/// Returns the offset of the end of central directory record: the last
/// signature whose comment length reaches exactly to the end of the archive.
std::size_t find_end_record(std::span<const std::byte> bytes, std::string_view source) {
    if (bytes.size() < kEndRecordSize) {
        fail(source, "not a ZIP archive (an .npz file is one), or truncated: " +
                         std::to_string(bytes.size()) +
                         " bytes is shorter than the end of central directory record");
    }
    const std::size_t last = bytes.size() - kEndRecordSize;
    const std::size_t first = last > kMaxCommentSize ? last - kMaxCommentSize : 0;
    for (std::size_t offset = last + 1; offset-- > first;) {
        if (read_u32(bytes, offset) == kEndRecordSignature &&
            offset + kEndRecordSize + read_u16(bytes, offset + 20) == bytes.size()) {
            return offset;
        }
    }
    fail(source,
         "not a ZIP archive (an .npz file is one), or truncated: no end of central "
         "directory record found");
}

CentralDirectory read_end_record(std::span<const std::byte> bytes, std::string_view source) {
    const std::size_t end = find_end_record(bytes, source);
    const std::string zip64 =
        "ZIP64 archives are not supported; xgrad reads archives under 4 GiB with fewer than "
        "65535 entries";
    if (end >= kZip64LocatorSize &&
        read_u32(bytes, end - kZip64LocatorSize) == kZip64LocatorSignature) {
        fail(source, zip64);
    }

    const std::uint16_t disk = read_u16(bytes, end + 4);
    const std::uint16_t directory_disk = read_u16(bytes, end + 6);
    const std::uint16_t disk_count = read_u16(bytes, end + 8);
    const std::uint16_t count = read_u16(bytes, end + 10);
    const std::uint32_t size = read_u32(bytes, end + 12);
    const std::uint32_t offset = read_u32(bytes, end + 16);
    if (count == 0xFFFF || size == 0xFFFFFFFF || offset == 0xFFFFFFFF) {
        fail(source, zip64);
    }
    if (disk != 0 || directory_disk != 0 || disk_count != count) {
        fail(source, "split (multi-disk) ZIP archives are not supported");
    }

    const std::uint64_t directory_end = std::uint64_t{offset} + size;
    if (directory_end > end) {
        fail(source, "truncated or corrupt archive: the central directory (offset " +
                         std::to_string(offset) + ", " + std::to_string(size) +
                         " bytes) extends past the end record at offset " + std::to_string(end));
    }
    if (directory_end < end) {
        fail(source, "corrupt archive: " + std::to_string(end - directory_end) +
                         " unexpected bytes between the central directory and the end record");
    }
    if (std::uint64_t{count} * kCentralHeaderSize > size) {
        fail(source, "corrupt archive: " + std::to_string(count) +
                         " entries cannot fit in a central directory of " + std::to_string(size) +
                         " bytes");
    }
    return {offset, size, count};
}

std::string method_name(std::uint16_t method) {
    switch (method) {
        case 12:
            return " (bzip2)";
        case 14:
            return " (LZMA)";
        case 93:
            return " (Zstandard)";
        case 95:
            return " (XZ)";
        default:
            return "";
    }
}

void check_entry(const ZipEntry& entry, std::uint16_t disk, std::string_view source) {
    // Method 99 marks an entry encrypted with AES (APPNOTE.TXT, appendix E).
    if ((entry.flags & (kFlagEncrypted | kFlagStrongEncryption)) != 0 || entry.method == 99) {
        fail_entry(source, entry.name, "the entry is encrypted, which is not supported");
    }
    if (entry.method != kMethodStored && entry.method != kMethodDeflated) {
        fail_entry(source, entry.name,
                   "unsupported compression method " + std::to_string(entry.method) +
                       method_name(entry.method) +
                       "; xgrad reads stored (0) and deflate (8) entries");
    }
    if (entry.compressed_size == 0xFFFFFFFF || entry.size == 0xFFFFFFFF ||
        entry.local_offset == 0xFFFFFFFF) {
        fail_entry(source, entry.name, "ZIP64 sizes or offsets are not supported");
    }
    if (disk != 0) {
        fail_entry(source, entry.name, "split (multi-disk) ZIP archives are not supported");
    }
    if (entry.method == kMethodStored && entry.compressed_size != entry.size) {
        fail_entry(source, entry.name,
                   "corrupt archive: a stored entry has compressed size " +
                       std::to_string(entry.compressed_size) + " but uncompressed size " +
                       std::to_string(entry.size));
    }
    if (entry.method == kMethodDeflated &&
        std::uint64_t{entry.compressed_size} * kMaxDeflateRatio < entry.size) {
        fail_entry(source, entry.name,
                   "corrupt archive: " + std::to_string(entry.compressed_size) +
                       " bytes of deflate data cannot expand to the " + std::to_string(entry.size) +
                       " bytes that the central directory gives");
    }
}

std::vector<ZipEntry> read_central_directory(std::span<const std::byte> bytes,
                                             const CentralDirectory& directory,
                                             std::string_view source) {
    std::vector<ZipEntry> entries;
    entries.reserve(directory.count);  // read_end_record bounded count by the directory's size
    std::unordered_set<std::string> names;
    std::size_t position = directory.offset;
    const std::size_t end = directory.offset + directory.size;

    for (std::size_t i = 0; i < directory.count; ++i) {
        if (end - position < kCentralHeaderSize ||
            read_u32(bytes, position) != kCentralHeaderSignature) {
            fail(source, "corrupt archive: central directory record " + std::to_string(i) +
                             " at offset " + std::to_string(position) + " is invalid");
        }
        const std::size_t name_size = read_u16(bytes, position + 28);
        const std::size_t record_size = kCentralHeaderSize + name_size +
                                        read_u16(bytes, position + 30) +
                                        read_u16(bytes, position + 32);
        if (record_size > end - position) {
            fail(source, "corrupt archive: central directory record " + std::to_string(i) +
                             " extends past the end of the central directory");
        }

        ZipEntry entry;
        entry.name = read_string(bytes, position + kCentralHeaderSize, name_size);
        entry.flags = read_u16(bytes, position + 8);
        entry.method = read_u16(bytes, position + 10);
        entry.crc = read_u32(bytes, position + 16);
        entry.compressed_size = read_u32(bytes, position + 20);
        entry.size = read_u32(bytes, position + 24);
        entry.local_offset = read_u32(bytes, position + 42);
        check_entry(entry, read_u16(bytes, position + 34), source);
        if (!names.insert(entry.name).second) {
            fail_entry(source, entry.name, "duplicate entry name");
        }
        entries.push_back(std::move(entry));
        position += record_size;
    }
    if (position != end) {
        fail(source, "corrupt archive: " + std::to_string(end - position) +
                         " unexpected bytes at the end of the central directory");
    }
    return entries;
}

/// Checks the entry's local header against the central directory and finds
/// its data, which must lie before the central directory.
void locate_data(std::span<const std::byte> bytes, ZipEntry& entry, std::size_t directory_offset,
                 std::string_view source) {
    const std::size_t header = entry.local_offset;
    if (header > directory_offset || directory_offset - header < kLocalHeaderSize) {
        fail_entry(source, entry.name,
                   "truncated or corrupt archive: the local header at offset " +
                       std::to_string(header) + " is not before the central directory at offset " +
                       std::to_string(directory_offset));
    }
    if (read_u32(bytes, header) != kLocalHeaderSignature) {
        fail_entry(source, entry.name,
                   "corrupt archive: no local file header at offset " + std::to_string(header));
    }

    const std::size_t name_size = read_u16(bytes, header + 26);
    const std::size_t extra_size = read_u16(bytes, header + 28);
    const std::size_t available = directory_offset - header - kLocalHeaderSize;
    if (name_size + extra_size > available ||
        available - name_size - extra_size < entry.compressed_size) {
        fail_entry(source, entry.name,
                   "truncated or corrupt archive: the entry's data extends past the start of the "
                   "central directory at offset " +
                       std::to_string(directory_offset));
    }
    const std::string local_name = read_string(bytes, header + kLocalHeaderSize, name_size);
    if (local_name != entry.name) {
        fail_entry(
            source, entry.name,
            "corrupt archive: the local header names the entry " + quote_entry_name(local_name));
    }

    const std::uint16_t local_flags = read_u16(bytes, header + 6);
    bool consistent = read_u16(bytes, header + 8) == entry.method;
    // With a data descriptor (flag bit 3) the local header has zeros for
    // the CRC-32 and sizes, and the central directory has the real values.
    if ((local_flags & kFlagDataDescriptor) == 0) {
        consistent = consistent && read_u32(bytes, header + 14) == entry.crc &&
                     read_u32(bytes, header + 18) == entry.compressed_size &&
                     read_u32(bytes, header + 22) == entry.size;
    }
    if (!consistent) {
        fail_entry(source, entry.name,
                   "corrupt archive: the local header and the central directory disagree on the "
                   "compression method, CRC-32 or sizes");
    }
    entry.data_offset = header + kLocalHeaderSize + name_size + extra_size;
}

void check_no_overlap(const std::vector<ZipEntry>& entries, std::string_view source) {
    std::vector<std::size_t> order(entries.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return entries[a].local_offset < entries[b].local_offset;
    });
    for (std::size_t i = 1; i < order.size(); ++i) {
        const ZipEntry& previous = entries[order[i - 1]];
        const ZipEntry& current = entries[order[i]];
        if (current.local_offset < previous.data_offset + previous.compressed_size) {
            fail(source, "corrupt archive: entries " + quote_entry_name(previous.name) + " and " +
                             quote_entry_name(current.name) + " overlap");
        }
    }
}

std::vector<std::byte> inflate_entry(std::span<const std::byte> compressed, const ZipEntry& entry,
                                     std::string_view source) {
    z_stream stream{};
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) {  // negative: raw deflate, no zlib header
        fail_entry(source, entry.name, "zlib could not start inflating");
    }
    std::vector<std::byte> output(entry.size);
    Bytef no_output = 0;
    stream.next_in = reinterpret_cast<const Bytef*>(compressed.data());
    stream.avail_in = static_cast<uInt>(compressed.size());
    stream.next_out = entry.size > 0 ? reinterpret_cast<Bytef*>(output.data()) : &no_output;
    stream.avail_out = entry.size;

    const int result = inflate(&stream, Z_FINISH);
    const std::string message = stream.msg != nullptr ? stream.msg : "";
    const uInt unused_input = stream.avail_in;
    const uInt unused_output = stream.avail_out;
    inflateEnd(&stream);

    const std::string prefix = "corrupt archive: ";
    if (result == Z_DATA_ERROR) {
        fail_entry(source, entry.name, prefix + "invalid deflate data: " + message);
    }
    if (result == Z_STREAM_END && unused_output > 0) {
        fail_entry(source, entry.name,
                   prefix + "the deflate data expands to " +
                       std::to_string(entry.size - unused_output) +
                       " bytes, but the central directory gives " + std::to_string(entry.size));
    }
    if (result == Z_STREAM_END && unused_input > 0) {
        fail_entry(source, entry.name,
                   prefix + std::to_string(unused_input) +
                       " unexpected bytes after the end of the deflate data");
    }
    if (result != Z_STREAM_END && unused_output == 0) {
        fail_entry(source, entry.name,
                   prefix + "the deflate data expands to more than the " +
                       std::to_string(entry.size) + " bytes that the central directory gives");
    }
    if (result != Z_STREAM_END) {
        fail_entry(source, entry.name, prefix + "the deflate data is truncated");
    }
    return output;
}

}  // namespace

std::uint32_t update_crc32(std::uint32_t crc, std::span<const std::byte> bytes) {
    // zlib's crc32_z returns its initial value for a null pointer, which the
    // data of an empty tensor can be, so an empty block leaves `crc` as it is.
    if (bytes.empty()) {
        return crc;
    }
    return static_cast<std::uint32_t>(
        crc32_z(crc, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

// --- writing ---------------------------------------------------------------------

std::string zip_local_header(const ZipStoredEntry& entry) {
    std::string header;
    put_u32(header, kLocalHeaderSignature);
    put_u16(header, kVersionNeeded);
    put_u16(header, name_flags(entry.name));
    put_u16(header, kMethodStored);
    put_u16(header, kDosTime);
    put_u16(header, kDosDate);
    put_u32(header, entry.crc);
    put_u32(header, entry.size);  // compressed size
    put_u32(header, entry.size);  // uncompressed size
    put_u16(header, static_cast<std::uint16_t>(entry.name.size()));
    put_u16(header, 0);  // extra field length
    return header + entry.name;
}

std::string zip_central_header(const ZipStoredEntry& entry) {
    std::string header;
    put_u32(header, kCentralHeaderSignature);
    put_u16(header, kVersionMadeBy);
    put_u16(header, kVersionNeeded);
    put_u16(header, name_flags(entry.name));
    put_u16(header, kMethodStored);
    put_u16(header, kDosTime);
    put_u16(header, kDosDate);
    put_u32(header, entry.crc);
    put_u32(header, entry.size);
    put_u32(header, entry.size);
    put_u16(header, static_cast<std::uint16_t>(entry.name.size()));
    put_u16(header, 0);  // extra field length
    put_u16(header, 0);  // comment length
    put_u16(header, 0);  // disk number start
    put_u16(header, 0);  // internal attributes
    put_u32(header, kExternalAttributes);
    put_u32(header, entry.offset);
    return header + entry.name;
}

std::string zip_end_record(std::uint16_t count, std::uint32_t directory_size,
                           std::uint32_t directory_offset) {
    std::string record;
    put_u32(record, kEndRecordSignature);
    put_u16(record, 0);  // number of this disk
    put_u16(record, 0);  // disk with the central directory
    put_u16(record, count);
    put_u16(record, count);
    put_u32(record, directory_size);
    put_u32(record, directory_offset);
    put_u16(record, 0);  // comment length
    return record;
}

// --- reading entries -------------------------------------------------------------

std::vector<ZipEntry> read_zip_directory(std::span<const std::byte> archive,
                                         std::string_view source) {
    const CentralDirectory directory = read_end_record(archive, source);
    std::vector<ZipEntry> entries = read_central_directory(archive, directory, source);
    for (ZipEntry& entry : entries) {
        locate_data(archive, entry, directory.offset, source);
    }
    check_no_overlap(entries, source);
    return entries;
}

std::span<const std::byte> read_zip_entry(std::span<const std::byte> archive, const ZipEntry& entry,
                                          std::string_view source,
                                          std::vector<std::byte>& inflated) {
    std::span<const std::byte> data = archive.subspan(entry.data_offset, entry.compressed_size);
    if (entry.method == kMethodDeflated) {
        inflated = inflate_entry(data, entry, source);
        data = inflated;
    }

    const std::uint32_t crc = update_crc32(0, data);
    if (crc != entry.crc) {
        char detail[96];
        std::snprintf(detail, sizeof detail,
                      "CRC-32 mismatch: the archive gives %08x, the data has %08x",
                      static_cast<unsigned>(entry.crc), static_cast<unsigned>(crc));
        fail_entry(source, entry.name, std::string("corrupt archive: ") + detail);
    }
    return data;
}

}  // namespace xgrad::detail
