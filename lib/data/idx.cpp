#include "xgrad/data/idx.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace xgrad::data {

namespace {

// Larger IDX files are rejected rather than read: no data set in this format
// comes close, and the cap bounds what a hostile header can make us hold.
constexpr std::uint64_t kMaxDataBytes = std::uint64_t{1} << 32;

std::size_t element_size(IdxType type) {
    switch (type) {
        case IdxType::uint8:
        case IdxType::int8:
            return 1;
        case IdxType::int16:
            return 2;
        case IdxType::int32:
        case IdxType::float32:
            return 4;
        case IdxType::float64:
            return 8;
    }
    return 0;
}

bool valid_type(std::uint8_t code) {
    switch (static_cast<IdxType>(code)) {
        case IdxType::uint8:
        case IdxType::int8:
        case IdxType::int16:
        case IdxType::int32:
        case IdxType::float32:
        case IdxType::float64:
            return true;
    }
    return false;
}

std::uint32_t read_big_endian32(const std::uint8_t* bytes) {
    return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
           (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
    throw io_error("IDX file '" + name + "': " + problem);
}

// The total file length (header plus data) that a header promises, once the
// header is complete in `bytes`; 0 while it is still incomplete.
std::uint64_t expected_length(const std::vector<std::uint8_t>& bytes, const std::string& name) {
    if (bytes.size() < 4) {
        return 0;
    }
    if (bytes[0] != 0 || bytes[1] != 0) {
        fail(name, "not an IDX file (its magic number does not start with two zero bytes)");
    }
    if (!valid_type(bytes[2])) {
        fail(name, "unknown element type code " + std::to_string(bytes[2]) +
                       " (valid: 8, 9, 11, 12, 13, 14)");
    }
    const std::size_t rank = bytes[3];
    const std::size_t header = 4 + 4 * rank;
    if (bytes.size() < header) {
        return 0;
    }
    // The product of the nonzero extents is capped too, even when another
    // extent is 0: a tensor of such a shape could not be created.
    std::uint64_t elements = 1;
    bool empty = false;
    for (std::size_t d = 0; d < rank; ++d) {
        const std::uint64_t extent = read_big_endian32(bytes.data() + 4 + 4 * d);
        if (extent == 0) {
            empty = true;
            continue;
        }
        if (elements > kMaxDataBytes / extent) {
            fail(name, "the dimensions describe more than " + std::to_string(kMaxDataBytes) +
                           " bytes of data, the reader's limit");
        }
        elements *= extent;
    }
    if (empty) {
        elements = 0;
    }
    const std::uint64_t data = elements * element_size(static_cast<IdxType>(bytes[2]));
    if (data > kMaxDataBytes) {
        fail(name, "the dimensions describe " + std::to_string(data) +
                       " bytes of data, more than the reader's limit of " +
                       std::to_string(kMaxDataBytes));
    }
    return header + data;
}

std::vector<std::uint8_t> read_file(const std::filesystem::path& path) {
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) {
        fail(path.string(), "is a directory, not a file");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        fail(path.string(), std::string("cannot open: ") + std::strerror(errno));
    }
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
    if (in.bad()) {
        fail(path.string(), "read failed");
    }
    return bytes;
}

// Inflates a gzip stream, growing the output only as data arrives and
// stopping as soon as it exceeds what the IDX header inside promises.
std::vector<std::uint8_t> gunzip(const std::vector<std::uint8_t>& compressed,
                                 const std::string& name) {
    z_stream stream{};
    if (inflateInit2(&stream, 15 + 16) != Z_OK) {
        fail(name, "cannot initialise zlib");
    }
    stream.next_in = const_cast<Bytef*>(compressed.data());
    stream.avail_in = static_cast<uInt>(compressed.size());

    std::vector<std::uint8_t> out;
    std::uint64_t expected = 0;
    int status = Z_OK;
    constexpr std::size_t kChunk = 1 << 20;
    while (status != Z_STREAM_END) {
        const std::size_t used = out.size();
        out.resize(used + kChunk);
        stream.next_out = out.data() + used;
        stream.avail_out = static_cast<uInt>(kChunk);
        status = inflate(&stream, Z_NO_FLUSH);
        out.resize(used + kChunk - stream.avail_out);
        if (status != Z_OK && status != Z_STREAM_END) {
            const std::string message = stream.msg != nullptr ? stream.msg : "unexpected end of data";
            inflateEnd(&stream);
            fail(name, "corrupt gzip data (" + message + ")");
        }
        if (status == Z_OK && stream.avail_in == 0 && stream.avail_out != 0) {
            inflateEnd(&stream);
            fail(name, "truncated gzip data");
        }
        if (expected == 0) {
            try {
                expected = expected_length(out, name);
            } catch (...) {
                inflateEnd(&stream);
                throw;
            }
        }
        if (expected != 0 && out.size() > expected) {
            inflateEnd(&stream);
            fail(name, "the file holds more data than its dimensions describe (" +
                           std::to_string(expected) + " bytes expected)");
        }
    }
    const bool trailing = stream.avail_in != 0;
    inflateEnd(&stream);
    if (trailing) {
        fail(name, "unexpected bytes after the end of the gzip stream");
    }
    return out;
}

template <std::size_t kBytes>
struct UnsignedOfSize;
template <>
struct UnsignedOfSize<1> {
    using type = std::uint8_t;
};
template <>
struct UnsignedOfSize<2> {
    using type = std::uint16_t;
};
template <>
struct UnsignedOfSize<4> {
    using type = std::uint32_t;
};
template <>
struct UnsignedOfSize<8> {
    using type = std::uint64_t;
};

// Decodes big-endian values of type Raw into `out`.
template <class T, class Raw>
void convert(const IdxFile& file, xt::xarray<T>& out) {
    using Bits = typename UnsignedOfSize<sizeof(Raw)>::type;
    const std::uint8_t* bytes = file.data.data();
    for (std::size_t i = 0; i < out.size(); ++i) {
        Bits bits = 0;
        for (std::size_t b = 0; b < sizeof(Raw); ++b) {
            bits = static_cast<Bits>((bits << 8) | bytes[i * sizeof(Raw) + b]);
        }
        Raw value;
        std::memcpy(&value, &bits, sizeof(Raw));
        out.flat(i) = static_cast<T>(value);
    }
}

}  // namespace

IdxFile parse_idx(std::vector<std::uint8_t> bytes, const std::string& name) {
    if (bytes.size() < 4) {
        fail(name, "truncated: " + std::to_string(bytes.size()) +
                       " bytes, shorter than the 4-byte magic number");
    }
    const std::uint64_t expected = expected_length(bytes, name);
    const std::size_t rank = bytes[3];
    const std::size_t header = 4 + 4 * rank;
    if (expected == 0) {
        fail(name, "truncated: the header of a " + std::to_string(rank) +
                       "-dimensional file needs " + std::to_string(header) + " bytes, the file has " +
                       std::to_string(bytes.size()));
    }
    IdxFile file;
    file.type = static_cast<IdxType>(bytes[2]);
    for (std::size_t d = 0; d < rank; ++d) {
        file.shape.push_back(read_big_endian32(bytes.data() + 4 + 4 * d));
    }
    if (bytes.size() < expected) {
        fail(name, "truncated: shape " + shape_string(file.shape) + " needs " +
                       std::to_string(expected - header) + " bytes of data, the file has " +
                       std::to_string(bytes.size() - header));
    }
    if (bytes.size() > expected) {
        fail(name, "the file holds " + std::to_string(bytes.size() - expected) +
                       " bytes after the data its dimensions describe");
    }
    bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header));
    file.data = std::move(bytes);
    return file;
}

IdxFile decode_idx(std::vector<std::uint8_t> bytes, const std::string& name) {
    const bool gzipped = bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
    if (gzipped) {
        bytes = gunzip(bytes, name);
    }
    return parse_idx(std::move(bytes), name);
}

IdxFile read_idx(const std::filesystem::path& path) {
    return decode_idx(read_file(path), path.string());
}

Tensor idx_to_tensor(const IdxFile& file, Dtype dtype) {
    return detail::visit_dtype(dtype, [&](auto zero) {
        using T = decltype(zero);
        xt::xarray<T> out(file.shape);
        switch (file.type) {
            case IdxType::uint8:
                convert<T, std::uint8_t>(file, out);
                break;
            case IdxType::int8:
                convert<T, std::int8_t>(file, out);
                break;
            case IdxType::int16:
                convert<T, std::int16_t>(file, out);
                break;
            case IdxType::int32:
                convert<T, std::int32_t>(file, out);
                break;
            case IdxType::float32:
                convert<T, float>(file, out);
                break;
            case IdxType::float64:
                convert<T, double>(file, out);
                break;
        }
        return Tensor(std::move(out));
    });
}

}  // namespace xgrad::data
