#include <limits>

#include "io_testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

const std::vector<Shape> kShapes = {{}, {5}, {2, 3}, {2, 0, 3}, {2, 3, 1, 4}};
const std::vector<Dtype> kDtypes = {Dtype::float32, Dtype::float64, Dtype::int64, Dtype::int8,
                                    Dtype::uint8};

/// Builds a .npy file by hand: magic, version `major`.0, header length, the
/// dict text followed by a newline, then `data`. No padding is added.
std::vector<std::byte> make_npy(const std::string& dict, const std::string& data, int major = 1) {
    std::string bytes = "\x93NUMPY";
    bytes += static_cast<char>(major);
    bytes += '\0';
    const std::size_t length = dict.size() + 1;
    const int length_size = major == 1 ? 2 : 4;
    for (int i = 0; i < length_size; ++i) {
        bytes += static_cast<char>((length >> (8 * i)) & 0xFF);
    }
    return to_bytes(bytes + dict + "\n" + data);
}

std::string float64_data(std::initializer_list<double> values) {
    std::string data;
    for (const double value : values) {
        data.append(reinterpret_cast<const char*>(&value), sizeof value);
    }
    return data;
}

const std::string kGoodDict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
const std::string kGoodData = float64_data({1.5, -2.0});

}  // namespace

TEST_SUITE("io.npy") {
    TEST_CASE("bytes match hand-written file") {
        const Tensor x(xt::xarray<float>{1.0f, 2.0f, 3.0f});
        const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
        const std::string expected =
            std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict + std::string(60, ' ') + "\n" +
            std::string("\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40", 12);
        CHECK(to_text(io::encode_npy(x)) == expected);
    }

    TEST_CASE("header writes shapes as Python tuples") {
        const std::string scalar = io::encode_npy_header(Dtype::float64, {});
        CHECK(contains(scalar, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }"));
        const std::string matrix = io::encode_npy_header(Dtype::int64, {2, 3});
        CHECK(contains(matrix, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }"));
    }

    TEST_CASE("data starts at multiple of 64") {
        for (std::size_t rank = 0; rank <= 64; ++rank) {
            CAPTURE(rank);
            const Shape shape(rank, 123);
            const std::string header = io::encode_npy_header(Dtype::float32, shape);
            CHECK(header.size() % 64 == 0);
            CHECK(header.back() == '\n');
            CHECK(header[6] == '\x01');
        }
    }

    TEST_CASE("round trips every dtype and rank") {
        TemporaryDirectory directory;
        for (const Dtype dtype : kDtypes) {
            for (const Shape& shape : kShapes) {
                CAPTURE(dtype_name(dtype));
                CAPTURE(shape_string(shape));
                const Tensor original = make_tensor(dtype, shape);

                const Tensor decoded = io::decode_npy(io::encode_npy(original));
                CHECK(same_tensor(decoded, original));

                const auto path = directory / "tensor.npy";
                io::save_npy(path, original);
                CHECK(same_tensor(io::load_npy(path), original));
            }
        }
        CHECK(directory.file_names() == std::vector<std::string>{"tensor.npy"});
    }

    TEST_CASE("reads versions 2 and 3") {
        for (const int major : {2, 3}) {
            CAPTURE(major);
            const Tensor x = io::decode_npy(make_npy(kGoodDict, kGoodData, major));
            CHECK(x.values<double>() == xt::xarray<double>{1.5, -2.0});
        }
    }

    TEST_CASE("accepts native byte-order marks") {
        for (const std::string descr : {"=f8", "|f8", "f8"}) {
            CAPTURE(descr);
            const std::string dict =
                "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (2,), }";
            CHECK(io::decode_npy(make_npy(dict, kGoodData)).values<double>() ==
                  xt::xarray<double>{1.5, -2.0});
        }
    }

    TEST_CASE("accepts any key order and quoting") {
        const std::string dict =
            "{\"shape\":(2 ,),\"fortran_order\" : False,  \"descr\":\"<f8\"}  ";
        CHECK(io::decode_npy(make_npy(dict, kGoodData)).values<double>() ==
              xt::xarray<double>{1.5, -2.0});
    }

    TEST_CASE("rejects invalid files naming the problem") {
        struct Case {
            const char* name;
            std::vector<std::byte> bytes;
            const char* problem;
        };
        const std::vector<std::byte> good = make_npy(kGoodDict, kGoodData);
        const auto truncated = [&good](std::size_t size) {
            return std::vector<std::byte>(good.begin(),
                                          good.begin() + static_cast<std::ptrdiff_t>(size));
        };
        const auto with_dict = [](const std::string& dict, const std::string& data = kGoodData) {
            return make_npy(dict, data);
        };
        std::vector<std::byte> wrong_magic = good;
        wrong_magic[5] = std::byte{'X'};
        std::vector<std::byte> version_4 = good;
        version_4[6] = std::byte{4};
        std::vector<std::byte> version_1_1 = good;
        version_1_1[7] = std::byte{1};

        const std::vector<Case> cases = {
            {"empty", {}, "truncated .npy file"},
            {"cut in magic", truncated(3), "truncated .npy file"},
            {"cut in header length", truncated(9),
             "truncated .npy file: it ends inside the header length"},
            {"cut in header", truncated(30), "truncated .npy file: the header needs"},
            {"cut in data", truncated(good.size() - 1),
             "truncated data: shape (2) of float64 needs 16 bytes, but only 15"},
            {"trailing bytes", make_npy(kGoodDict, kGoodData + "xyz"),
             "3 unexpected bytes after the data"},
            {"wrong magic", wrong_magic, "not a .npy file"},
            {"not npy at all", to_bytes("PK\x03\x04 this is a zip"), "not a .npy file"},
            {"version 4.0", version_4, "unsupported .npy format version 4.0"},
            {"version 1.1", version_1_1, "unsupported .npy format version 1.1"},
            {"not a dict", with_dict("['descr', '<f8']"),
             "malformed .npy header: the header is not a Python dict literal"},
            {"missing key", with_dict("{'descr': '<f8', 'fortran_order': False}"),
             "the header has no 'shape' key"},
            {"extra key",
             with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}"),
             "unexpected key 'x'"},
            {"duplicate key",
             with_dict("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}"),
             "key 'descr' appears twice"},
            {"unterminated string", with_dict("{'descr': '<f8"), "unterminated string"},
            {"escape in string",
             with_dict("{'descr': '<f\\x38', 'fortran_order': False, 'shape': (2,)}"),
             "escape sequences"},
            {"missing colon", with_dict("{'descr' '<f8'}"), "expected ':' after key 'descr'"},
            {"missing comma", with_dict("{'descr': '<f8' 'fortran_order': False}"),
             "expected ',' or '}'"},
            {"text after dict", with_dict(kGoodDict + " 1"),
             "unexpected text after the closing '}'"},
            {"bool not True/False",
             with_dict("{'descr': '<f8', 'fortran_order': 0, 'shape': (2,)}"),
             "'fortran_order' must be True or False"},
            {"shape without comma",
             with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (2)}"),
             "a one-dimensional shape is written (3,)"},
            {"shape as list", with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': [2]}"),
             "must be a tuple of integers"},
            {"negative dimension",
             with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (-2,)}"),
             "negative dimension"},
            {"dimension overflows",
             with_dict(
                 "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,)}"),
             "does not fit in 64 bits"},
            {"float dimension",
             with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (2.0,)}"),
             "expected ',' or ')'"},
            {"int32", with_dict("{'descr': '<i4', 'fortran_order': False, 'shape': (4,)}"),
             "unsupported dtype '<i4'"},
            {"bool", with_dict("{'descr': '|b1', 'fortran_order': False, 'shape': (16,)}"),
             "unsupported dtype '|b1'"},
            {"unicode", with_dict("{'descr': '<U2', 'fortran_order': False, 'shape': (2,)}"),
             "unsupported dtype '<U2'"},
            {"structured",
             with_dict("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,)}"),
             "unsupported dtype: structured dtypes"},
            {"fortran order", with_dict("{'descr': '<f8', 'fortran_order': True, 'shape': (2,)}"),
             "fortran_order True is not supported"},
            {"big-endian", with_dict("{'descr': '>f8', 'fortran_order': False, 'shape': (2,)}"),
             "big-endian data ('>f8') is not supported"},
            {"huge shape",
             with_dict(
                 "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000)}"),
             "truncated data: shape (1000000000, 1000000000) of float64 needs 8000000000000000000 "
             "bytes, but only 16"},
            {"overflowing shape",
             with_dict(
                 "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"),
             "invalid shape (4294967296, 4294967296) of float64: its size in bytes overflows"},
            {"overflow beside zero",
             with_dict(
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4)}"),
             "its size in bytes overflows"},
        };

        for (const Case& c : cases) {
            CAPTURE(c.name);
            const std::string source = std::string(c.name) + ".npy";
            const std::string message = io_error_message([&] { io::decode_npy(c.bytes, source); });
            CAPTURE(message);
            CHECK(message.find(source + ": ") == 0);
            CHECK(contains(message, c.problem));
        }
    }

    TEST_CASE("rejects more than 64 dimensions") {
        std::string shape = "(";
        for (int i = 0; i < 65; ++i) {
            shape += "1, ";
        }
        const std::string dict =
            "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + ")}";
        const std::string message = io_error_message(
            [&] { io::decode_npy(make_npy(dict, float64_data({1.0})), "deep.npy"); });
        CHECK(message.find("deep.npy: ") == 0);
        CHECK(contains(message, "the shape has 65 dimensions; xgrad reads at most 64"));
    }

    TEST_CASE("load_npy names the file") {
        TemporaryDirectory directory;
        const auto path = directory / "truncated.npy";
        const std::vector<std::byte> bytes = io::encode_npy(make_tensor(Dtype::float32, {4, 4}));
        write_text(path, to_text(bytes).substr(0, bytes.size() - 5));
        const std::string message = io_error_message([&] { io::load_npy(path); });
        CHECK(message.find(path.string() + ": truncated data") == 0);

        const auto missing = directory / "missing.npy";
        CHECK(io_error_message([&] {
                  io::load_npy(missing);
              }).find(missing.string() + ": cannot open") == 0);
    }

    TEST_CASE("undefined tensor is rejected") {
        TemporaryDirectory directory;
        CHECK_THROWS_WITH_AS(io::encode_npy(Tensor()),
                             doctest::Contains("encode_npy: the tensor is undefined"), value_error);
        CHECK_THROWS_WITH_AS(io::save_npy(directory / "x.npy", Tensor()),
                             doctest::Contains("save_npy: the tensor is undefined"), value_error);
        CHECK(directory.file_names().empty());
    }

    TEST_CASE("saves a tensor that requires grad") {
        Tensor x(xt::xarray<double>{1.0, 2.0});
        x.requires_grad_(true);
        const Tensor loaded = io::decode_npy(io::encode_npy(x));
        CHECK(loaded.values<double>() == xt::xarray<double>{1.0, 2.0});
        CHECK_FALSE(loaded.requires_grad());
    }
}
