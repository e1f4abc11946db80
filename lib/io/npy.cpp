#include "xgrad/io/npy.hpp"

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <ostream>
#include <string>

#include "xgrad/io/file.hpp"

namespace xgrad::io {
namespace {

// The data is copied between tensor memory and the file without swapping
// bytes, and tensor memory is copied as one C-ordered block.
static_assert(std::endian::native == std::endian::little,
              "xgrad::io copies tensor memory to little-endian .npy data unchanged, so it "
              "needs a little-endian host");
static_assert(XTENSOR_DEFAULT_LAYOUT == xt::layout_type::row_major,
              "xgrad::io writes xt::xarray memory as C-ordered .npy data");

constexpr std::string_view kMagic{"\x93NUMPY", 6};
constexpr std::size_t kAlignment = 64;
constexpr std::size_t kMaxRank = 64;
// Largest data block in bytes: xtensor indexes with signed strides.
constexpr std::size_t kMaxDataBytes =
    static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());

[[noreturn]] void fail(std::string_view source, const std::string& problem) {
    throw io_error(std::string(source) + ": " + problem);
}

const char* descr_of(Dtype dtype) {
    switch (dtype) {
        case Dtype::float32:
            return "<f4";
        case Dtype::float64:
            return "<f8";
        case Dtype::int8:
            return "|i1";
        case Dtype::uint8:
            return "|u1";
        case Dtype::int64:
            break;
    }
    return "<i8";
}

std::size_t item_size(Dtype dtype) {
    switch (dtype) {
        case Dtype::float32:
            return 4;
        case Dtype::int8:
        case Dtype::uint8:
            return 1;
        default:
            return 8;
    }
}

/// Formats a shape as Python writes a tuple: "()", "(3,)", "(2, 3)".
std::string shape_literal(const Shape& shape) {
    std::string text = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
    }
    return text + (shape.size() == 1 ? ",)" : ")");
}

std::span<const std::byte> tensor_bytes(const Tensor& tensor) {
    return detail::visit_dtype(tensor.dtype(), [&](auto zero) {
        using T = decltype(zero);
        const xt::xarray<T>& values = tensor.values<T>();
        return std::as_bytes(std::span<const T>(values.data(), values.size()));
    });
}

void check_defined(const Tensor& tensor, const char* function) {
    if (!tensor.defined()) {
        throw value_error(std::string(function) + ": the tensor is undefined");
    }
}

// --- reading the header ------------------------------------------------------

struct Header {
    std::string descr;
    bool fortran_order = false;
    Shape shape;
};

/// Parses the header dict. It accepts the Python literal syntax that NumPy
/// writes and ast.literal_eval reads for these three keys: single- or
/// double-quoted strings without escapes, True and False, and tuples of
/// non-negative integers, with optional trailing commas.
class HeaderParser {
  public:
    HeaderParser(std::string_view text, std::string_view source) : text_(text), source_(source) {}

    Header parse() {
        Header header;
        bool has_descr = false;
        bool has_fortran_order = false;
        bool has_shape = false;

        skip_space();
        expect('{', "the header is not a Python dict literal");
        skip_space();
        while (!consume('}')) {
            const std::string key = parse_string("a key");
            skip_space();
            expect(':', "expected ':' after key '" + key + "'");
            skip_space();
            if (key == "descr") {
                mark_seen(has_descr, key);
                header.descr = parse_descr();
            } else if (key == "fortran_order") {
                mark_seen(has_fortran_order, key);
                header.fortran_order = parse_bool(key);
            } else if (key == "shape") {
                mark_seen(has_shape, key);
                header.shape = parse_shape();
            } else {
                malformed("unexpected key '" + key +
                          "'; the header must have exactly the keys 'descr', 'fortran_order' "
                          "and 'shape'");
            }
            skip_space();
            if (consume(',')) {
                skip_space();
            } else if (peek() != '}') {
                malformed("expected ',' or '}' after the value of '" + key + "'");
            }
        }
        skip_space();
        if (position_ != text_.size()) {
            malformed("unexpected text after the closing '}'");
        }

        if (!has_descr) {
            malformed("the header has no 'descr' key");
        }
        if (!has_fortran_order) {
            malformed("the header has no 'fortran_order' key");
        }
        if (!has_shape) {
            malformed("the header has no 'shape' key");
        }
        return header;
    }

  private:
    [[noreturn]] void malformed(const std::string& problem) const {
        fail(source_, "malformed .npy header: " + problem + " (at byte " +
                          std::to_string(position_) + " of the header dict)");
    }

    void mark_seen(bool& seen, const std::string& key) const {
        if (seen) {
            malformed("key '" + key + "' appears twice");
        }
        seen = true;
    }

    char peek() const { return position_ < text_.size() ? text_[position_] : '\0'; }

    bool consume(char expected) {
        if (position_ < text_.size() && text_[position_] == expected) {
            ++position_;
            return true;
        }
        return false;
    }

    void expect(char expected, const std::string& problem) {
        if (!consume(expected)) {
            malformed(problem);
        }
    }

    bool consume_word(std::string_view word) {
        if (text_.substr(position_, word.size()) == word) {
            position_ += word.size();
            return true;
        }
        return false;
    }

    void skip_space() {
        while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\t' ||
                                            text_[position_] == '\n' || text_[position_] == '\r')) {
            ++position_;
        }
    }

    std::string parse_string(const std::string& description) {
        const char quote = peek();
        if (quote != '\'' && quote != '"') {
            malformed("expected " + description + " in quotes");
        }
        ++position_;
        const std::size_t end = text_.find(quote, position_);
        if (end == std::string_view::npos) {
            malformed("unterminated string");
        }
        const std::string_view value = text_.substr(position_, end - position_);
        if (value.find('\\') != std::string_view::npos) {
            malformed("escape sequences in strings are not supported");
        }
        position_ = end + 1;
        return std::string(value);
    }

    std::string parse_descr() {
        if (peek() == '[') {
            fail(source_,
                 "unsupported dtype: structured dtypes (a list as 'descr') are not supported; "
                 "xgrad reads '<f4', '<f8', '<i8', '|i1' and '|u1'");
        }
        return parse_string("the 'descr' string");
    }

    bool parse_bool(const std::string& key) {
        if (consume_word("True")) {
            return true;
        }
        if (consume_word("False")) {
            return false;
        }
        malformed("the value of '" + key + "' must be True or False");
    }

    Shape parse_shape() {
        expect('(', "the value of 'shape' must be a tuple of integers, such as (2, 3)");
        Shape shape;
        bool has_comma = false;
        skip_space();
        while (!consume(')')) {
            shape.push_back(parse_dimension());
            skip_space();
            if (consume(',')) {
                has_comma = true;
                skip_space();
            } else if (peek() != ')') {
                malformed("expected ',' or ')' in the value of 'shape'");
            }
        }
        // In Python, (3) is the integer 3 and only (3,) is a tuple.
        if (shape.size() == 1 && !has_comma) {
            malformed(
                "the value of 'shape' is an integer in parentheses, not a tuple; a "
                "one-dimensional shape is written (3,)");
        }
        return shape;
    }

    std::size_t parse_dimension() {
        if (peek() == '-') {
            malformed("the shape has a negative dimension");
        }
        if (peek() < '0' || peek() > '9') {
            malformed("expected an integer in the value of 'shape'");
        }
        std::size_t value = 0;
        while (peek() >= '0' && peek() <= '9') {
            const auto digit = static_cast<std::size_t>(peek() - '0');
            if (value > (std::numeric_limits<std::size_t>::max() - digit) / 10) {
                malformed("a dimension of the shape does not fit in 64 bits");
            }
            value = value * 10 + digit;
            ++position_;
        }
        return value;
    }

    std::string_view text_;
    std::string_view source_;
    std::size_t position_ = 0;
};

std::optional<Dtype> dtype_of_type_code(std::string_view code) {
    if (code == "f4") {
        return Dtype::float32;
    }
    if (code == "f8") {
        return Dtype::float64;
    }
    if (code == "i8") {
        return Dtype::int64;
    }
    if (code == "i1") {
        return Dtype::int8;
    }
    if (code == "u1") {
        return Dtype::uint8;
    }
    return std::nullopt;
}

/// Maps a 'descr' such as '<f4' to a dtype. '=' means native order and '|'
/// means "not applicable". NumPy reads both as native order, which is
/// little-endian on every host this file compiles for.
Dtype dtype_of_descr(const std::string& descr, std::string_view source) {
    const bool has_order =
        !descr.empty() && std::string_view("<>=|").find(descr[0]) != std::string_view::npos;
    const std::string_view code = std::string_view(descr).substr(has_order ? 1 : 0);
    const std::optional<Dtype> dtype = dtype_of_type_code(code);
    if (!dtype) {
        fail(source, "unsupported dtype '" + descr +
                         "'; xgrad reads '<f4' (float32), '<f8' (float64), '<i8' (int64), "
                         "'|i1' (int8) and '|u1' (uint8), so "
                         "convert the array with astype before saving it");
    }
    if (descr[0] == '>') {
        fail(source, "big-endian data ('" + descr +
                         "') is not supported; convert the array with astype('<" +
                         std::string(code) + "') before saving it");
    }
    return *dtype;
}

/// Returns the size in bytes of the data for `shape`, or nothing when it
/// exceeds kMaxDataBytes. Zero extents are skipped while checking, so that
/// a shape such as (0, 2**62, 2**62) is rejected, as numpy.empty rejects it
/// (checked with NumPy 1.24).
std::optional<std::size_t> data_size(const Shape& shape, std::size_t item) {
    std::size_t bytes = item;
    bool empty = false;
    for (const std::size_t extent : shape) {
        if (extent == 0) {
            empty = true;
            continue;
        }
        if (bytes > kMaxDataBytes / extent) {
            return std::nullopt;
        }
        bytes *= extent;
    }
    return empty ? 0 : bytes;
}

struct Preamble {
    std::size_t header_begin;
    std::size_t header_end;
};

/// Checks the magic string and version and returns where the header dict lies.
Preamble read_preamble(std::span<const std::byte> bytes, std::string_view source) {
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (text.substr(0, kMagic.size()) != kMagic.substr(0, std::min(kMagic.size(), text.size()))) {
        fail(source, "not a .npy file: it does not start with the magic string \"\\x93NUMPY\"");
    }
    if (text.size() < kMagic.size() + 2) {
        fail(source, "truncated .npy file: it ends inside the magic string and version (" +
                         std::to_string(text.size()) + " bytes)");
    }

    const auto major = static_cast<unsigned char>(text[6]);
    const auto minor = static_cast<unsigned char>(text[7]);
    if ((major != 1 && major != 2 && major != 3) || minor != 0) {
        fail(source, "unsupported .npy format version " + std::to_string(major) + "." +
                         std::to_string(minor) + "; xgrad reads versions 1.0, 2.0 and 3.0");
    }

    // Version 1.0 stores the header length as a uint16, later versions as a uint32.
    const std::size_t length_size = major == 1 ? 2 : 4;
    const std::size_t header_begin = kMagic.size() + 2 + length_size;
    if (text.size() < header_begin) {
        fail(source, "truncated .npy file: it ends inside the header length (" +
                         std::to_string(text.size()) + " bytes)");
    }
    std::size_t header_length = 0;
    for (std::size_t i = 0; i < length_size; ++i) {
        header_length |= std::size_t{static_cast<unsigned char>(text[8 + i])} << (8 * i);
    }
    if (header_length > text.size() - header_begin) {
        fail(source, "truncated .npy file: the header needs " + std::to_string(header_length) +
                         " bytes, but only " + std::to_string(text.size() - header_begin) +
                         " follow the header length");
    }
    return {header_begin, header_begin + header_length};
}

}  // namespace

std::string encode_npy_header(Dtype dtype, const Shape& shape) {
    const std::string dict = std::string("{'descr': '") + descr_of(dtype) +
                             "', 'fortran_order': False, 'shape': " + shape_literal(shape) + ", }";

    // Version 1.0 stores the header length in a uint16, and 2.0 in a uint32.
    std::size_t preamble = kMagic.size() + 2 + 2;
    char major = 1;
    const std::size_t unpadded = dict.size() + 1;  // the dict and a newline
    auto padded_length = [&](std::size_t preamble_size) {
        const std::size_t end = preamble_size + unpadded;
        return unpadded + (kAlignment - end % kAlignment) % kAlignment;
    };
    if (padded_length(preamble) > std::numeric_limits<std::uint16_t>::max()) {
        preamble = kMagic.size() + 2 + 4;
        major = 2;
    }
    const std::size_t header_length = padded_length(preamble);

    std::string header(kMagic);
    header += major;
    header += '\0';
    const std::size_t length_size = preamble - kMagic.size() - 2;
    for (std::size_t i = 0; i < length_size; ++i) {
        header += static_cast<char>((header_length >> (8 * i)) & 0xFF);
    }
    header += dict;
    header.append(header_length - unpadded, ' ');
    header += '\n';
    return header;
}

std::vector<std::byte> encode_npy(const Tensor& tensor) {
    check_defined(tensor, "encode_npy");
    const std::string header = encode_npy_header(tensor.dtype(), tensor.shape());
    const std::span<const std::byte> data = tensor_bytes(tensor);

    std::vector<std::byte> bytes(header.size() + data.size());
    std::memcpy(bytes.data(), header.data(), header.size());
    if (!data.empty()) {
        std::memcpy(bytes.data() + header.size(), data.data(), data.size());
    }
    return bytes;
}

void write_npy(std::ostream& out, const Tensor& tensor) {
    check_defined(tensor, "write_npy");
    const std::string header = encode_npy_header(tensor.dtype(), tensor.shape());
    const std::span<const std::byte> data = tensor_bytes(tensor);

    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    if (!data.empty()) {
        out.write(reinterpret_cast<const char*>(data.data()),
                  static_cast<std::streamsize>(data.size()));
    }
}

Tensor decode_npy(std::span<const std::byte> bytes, std::string_view source) {
    const Preamble preamble = read_preamble(bytes, source);
    const std::string_view dict(reinterpret_cast<const char*>(bytes.data()) + preamble.header_begin,
                                preamble.header_end - preamble.header_begin);
    const Header header = HeaderParser(dict, source).parse();

    const Dtype dtype = dtype_of_descr(header.descr, source);
    if (header.fortran_order) {
        fail(source,
             "fortran_order True is not supported; xgrad reads C-ordered data, so save "
             "numpy.ascontiguousarray(array) instead");
    }
    if (header.shape.size() > kMaxRank) {
        fail(source, "the shape has " + std::to_string(header.shape.size()) +
                         " dimensions; xgrad reads at most " + std::to_string(kMaxRank));
    }

    // Check the claimed size against the bytes present before allocating.
    const std::string described = shape_string(header.shape) + " of " + dtype_name(dtype);
    const std::optional<std::size_t> expected = data_size(header.shape, item_size(dtype));
    if (!expected) {
        fail(source, "invalid shape " + described + ": its size in bytes overflows");
    }
    const std::size_t present = bytes.size() - preamble.header_end;
    if (present < *expected) {
        fail(source, "truncated data: shape " + described + " needs " + std::to_string(*expected) +
                         " bytes, but only " + std::to_string(present) + " follow the header");
    }
    if (present > *expected) {
        fail(source, std::to_string(present - *expected) +
                         " unexpected bytes after the data: shape " + described + " needs " +
                         std::to_string(*expected) + " bytes, but " + std::to_string(present) +
                         " follow the header");
    }

    return detail::visit_dtype(dtype, [&](auto zero) {
        using T = decltype(zero);
        xt::xarray<T> values(header.shape);
        if (*expected > 0) {
            std::memcpy(values.data(), bytes.data() + preamble.header_end, *expected);
        }
        return Tensor(std::move(values));
    });
}

void save_npy(const std::filesystem::path& path, const Tensor& tensor) {
    check_defined(tensor, "save_npy");
    write_file_atomically(path, [&tensor](std::ostream& out) { write_npy(out, tensor); });
}

Tensor load_npy(const std::filesystem::path& path) {
    const std::vector<std::byte> bytes = read_file(path);
    return decode_npy(bytes, path.string());
}

}  // namespace xgrad::io
