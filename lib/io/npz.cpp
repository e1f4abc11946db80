#include "xgrad/io/npz.hpp"

#include <cstdint>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <string>
#include <unordered_set>

#include "xgrad/io/file.hpp"
#include "xgrad/io/npy.hpp"
#include "zip.hpp"

namespace xgrad::io {
namespace {

const std::string kNpySuffix = ".npy";

[[noreturn]] void fail(std::string_view source, const std::string& problem) {
    throw io_error(std::string(source) + ": " + problem);
}

bool ends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

bool is_valid_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        std::size_t length = 0;
        std::uint32_t code_point = 0;
        if (lead < 0x80) {
            ++i;
            continue;
        } else if ((lead & 0xE0) == 0xC0) {
            length = 2;
            code_point = lead & 0x1F;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3;
            code_point = lead & 0x0F;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4;
            code_point = lead & 0x07;
        } else {
            return false;
        }
        if (text.size() - i < length) {
            return false;
        }
        for (std::size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xC0) != 0x80) {
                return false;
            }
            code_point = (code_point << 6) | (next & 0x3F);
        }
        // Reject overlong forms, UTF-16 surrogates and values past U+10FFFF.
        constexpr std::uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
        if (code_point < kMinimum[length] || (code_point >= 0xD800 && code_point <= 0xDFFF) ||
            code_point > 0x10FFFF) {
            return false;
        }
        i += length;
    }
    return true;
}

/// Throws io_error unless an entry read from an archive is named
/// "<tensor name>.npy" with a non-empty tensor name.
void check_npy_entry_name(const std::string& entry_name, std::string_view source) {
    const std::string entry_source = detail::zip_entry_source(source, entry_name);
    if (!ends_with(entry_name, kNpySuffix)) {
        throw io_error(entry_source +
                       ": not a .npy file; an .npz archive contains only <name>.npy entries");
    }
    if (entry_name.size() == kNpySuffix.size()) {
        throw io_error(entry_source + ": the tensor name before \".npy\" is empty");
    }
}

// --- writing ---------------------------------------------------------------------

/// A stream buffer that discards its output and keeps the CRC-32 and byte
/// count, so an entry's checksum and size are known before its header is written.
class Crc32Buffer : public std::streambuf {
  public:
    std::uint32_t crc() const { return crc_; }
    std::uint64_t size() const { return size_; }

  protected:
    int_type overflow(int_type ch) override {
        if (!traits_type::eq_int_type(ch, traits_type::eof())) {
            const char c = traits_type::to_char_type(ch);
            update(&c, 1);
        }
        return traits_type::not_eof(ch);
    }

    std::streamsize xsputn(const char* data, std::streamsize count) override {
        update(data, static_cast<std::size_t>(count));
        return count;
    }

  private:
    void update(const char* data, std::size_t size) {
        crc_ = detail::update_crc32(crc_, std::as_bytes(std::span(data, size)));
        size_ += size;
    }

    std::uint32_t crc_ = 0;
    std::uint64_t size_ = 0;
};

struct PlannedEntry {
    detail::ZipStoredEntry zip;  // named as the tensor plus ".npy"
    const Tensor* tensor = nullptr;
};

struct ArchivePlan {
    std::vector<PlannedEntry> entries;
    std::uint32_t directory_offset = 0;
    std::uint32_t directory_size = 0;
};

/// Checks names and tensors, computes every entry's CRC-32, size and offset,
/// and checks that the archive fits without ZIP64, all before any output.
ArchivePlan plan_archive(const NamedTensors& tensors, const char* function,
                         std::string_view destination) {
    std::unordered_set<std::string_view> names;
    for (const auto& [name, tensor] : tensors) {
        check_tensor_name(name, function);
        if (!names.insert(name).second) {
            throw value_error(std::string(function) + ": duplicate tensor name " +
                              detail::quote_entry_name(name));
        }
        if (!tensor.defined()) {
            throw value_error(std::string(function) + ": tensor " + detail::quote_entry_name(name) +
                              " is undefined");
        }
    }
    if (tensors.size() > detail::kZipMaxEntries) {
        fail(destination, "an archive without ZIP64 has at most " +
                              std::to_string(detail::kZipMaxEntries) + " entries, not " +
                              std::to_string(tensors.size()) +
                              "; split the tensors over several files");
    }

    ArchivePlan plan;
    std::uint64_t offset = 0;
    std::uint64_t directory_size = 0;
    for (const auto& [name, tensor] : tensors) {
        Crc32Buffer checksum;
        std::ostream out(&checksum);
        write_npy(out, tensor);

        PlannedEntry entry{{name + kNpySuffix, checksum.crc(), 0, 0}, &tensor};
        if (checksum.size() > detail::kZipMaxSize || offset > detail::kZipMaxSize) {
            fail(destination,
                 "tensor " + detail::quote_entry_name(name) + " (" +
                     std::to_string(checksum.size()) +
                     " bytes as .npy) does not fit in an archive without ZIP64, "
                     "which is limited to 4 GiB; save large tensors to separate files");
        }
        entry.zip.size = static_cast<std::uint32_t>(checksum.size());
        entry.zip.offset = static_cast<std::uint32_t>(offset);
        offset += detail::kZipLocalHeaderSize + entry.zip.name.size() + entry.zip.size;
        directory_size += detail::kZipCentralHeaderSize + entry.zip.name.size();
        plan.entries.push_back(std::move(entry));
    }
    if (offset + directory_size > detail::kZipMaxSize) {
        fail(destination, "the archive would be " + std::to_string(offset + directory_size) +
                              " bytes, over the 4 GiB limit of an archive without ZIP64; split "
                              "the tensors over several files");
    }
    plan.directory_offset = static_cast<std::uint32_t>(offset);
    plan.directory_size = static_cast<std::uint32_t>(directory_size);
    return plan;
}

void write_archive(std::ostream& out, const ArchivePlan& plan) {
    for (const PlannedEntry& entry : plan.entries) {
        out << detail::zip_local_header(entry.zip);
        write_npy(out, *entry.tensor);
    }
    for (const PlannedEntry& entry : plan.entries) {
        out << detail::zip_central_header(entry.zip);
    }
    out << detail::zip_end_record(static_cast<std::uint16_t>(plan.entries.size()),
                                  plan.directory_size, plan.directory_offset);
}

}  // namespace

void check_tensor_name(std::string_view name, const char* function) {
    if (name.empty()) {
        throw value_error(std::string(function) + ": a tensor name is empty");
    }
    if (name.size() + kNpySuffix.size() > std::numeric_limits<std::uint16_t>::max()) {
        throw value_error(std::string(function) + ": a tensor name of " +
                          std::to_string(name.size()) +
                          " bytes is too long; with \".npy\" added it must fit in 65535 bytes");
    }
    const std::string prefix =
        std::string(function) + ": tensor name " + detail::quote_entry_name(name);
    if (!is_valid_utf8(name)) {
        throw value_error(prefix + " is not valid UTF-8");
    }
    for (const char c : name) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7F) {
            throw value_error(prefix + " contains a control character");
        }
        if (c == '\\') {
            throw value_error(prefix + " contains a backslash; use '/' to nest names");
        }
    }
    if (name.front() == '/') {
        throw value_error(prefix +
                          " starts with '/', which would make an absolute path in the archive");
    }
    std::size_t start = 0;
    while (start <= name.size()) {
        const std::size_t slash = std::min(name.find('/', start), name.size());
        const std::string_view part = name.substr(start, slash - start);
        if (part.empty() || part == "." || part == "..") {
            throw value_error(prefix + " has an empty, \".\" or \"..\" part between slashes");
        }
        start = slash + 1;
    }
}

std::vector<std::byte> encode_npz(const NamedTensors& tensors) {
    const ArchivePlan plan = plan_archive(tensors, "encode_npz", "encode_npz");
    std::ostringstream out;
    write_archive(out, plan);
    const std::string text = std::move(out).str();
    const auto* begin = reinterpret_cast<const std::byte*>(text.data());
    return {begin, begin + text.size()};
}

NamedTensors decode_npz(std::span<const std::byte> archive, std::string_view source) {
    const std::vector<detail::ZipEntry> entries = detail::read_zip_directory(archive, source);
    for (const detail::ZipEntry& entry : entries) {
        check_npy_entry_name(entry.name, source);
    }

    NamedTensors tensors;
    tensors.reserve(entries.size());
    for (const detail::ZipEntry& entry : entries) {
        std::vector<std::byte> inflated;
        const std::span<const std::byte> data =
            detail::read_zip_entry(archive, entry, source, inflated);
        std::string name = entry.name.substr(0, entry.name.size() - kNpySuffix.size());
        // Names that save_npz would reject (such as "../x") are rejected on
        // reading too, so a caller may use every name it gets as a path.
        try {
            check_tensor_name(name, "load_npz");
        } catch (const value_error& error) {
            throw io_error(std::string(source) + ": " + error.what());
        }
        tensors.emplace_back(std::move(name),
                             decode_npy(data, detail::zip_entry_source(source, entry.name)));
    }
    return tensors;
}

void save_npz(const std::filesystem::path& path, const NamedTensors& tensors) {
    const ArchivePlan plan = plan_archive(tensors, "save_npz", path.string());
    write_file_atomically(path, [&plan](std::ostream& out) { write_archive(out, plan); });
}

NamedTensors load_npz(const std::filesystem::path& path) {
    const std::vector<std::byte> bytes = read_file(path);
    return decode_npz(bytes, path.string());
}

}  // namespace xgrad::io
