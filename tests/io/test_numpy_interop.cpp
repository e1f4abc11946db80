// Files written by xgrad and read by NumPy, and the other way round. These
// tests run /usr/bin/python3 with numpy (installed by scripts/setup) and fail,
// rather than skip, when it is missing.

#include <limits>

#include <xtensor/xbuilder.hpp>

#include "io_testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

/// The tensors that both sides write and check. kPythonExpected below has
/// the same values for NumPy, so change both together.
io::NamedTensors interop_tensors() {
    constexpr double kInfinity = std::numeric_limits<double>::infinity();
    xt::xarray<std::int64_t> step(Shape{});
    step.flat(0) = 9007199254740993;  // 2**53 + 1, which a double cannot hold
    xt::xarray<std::int64_t> grid = xt::arange<std::int64_t>(12) - 6;
    grid.reshape({2, 1, 3, 2});

    return {
        {"weight", Tensor(xt::xarray<float>{{-1.0f, -0.5f, 0.0f}, {0.5f, 1.0f, 1.5f}})},
        {"layers.0.bias", Tensor(xt::xarray<double>{0.1, -2.5, 1e300, -0.0})},
        {"special", Tensor(xt::xarray<double>{std::numeric_limits<double>::quiet_NaN(), kInfinity,
                                              -kInfinity})},
        {"step", Tensor(std::move(step))},
        {"empty", Tensor(xt::xarray<float>(Shape{2, 0, 3}))},
        {"encoder/grid", Tensor(std::move(grid))},
        {"d\xc3\xa9"
         "calage",
         Tensor(xt::xarray<float>{0.25f})},  // "décalage" in UTF-8
    };
}

const std::string kPythonExpected = R"(
import os
import sys
import zipfile

import numpy as np

directory = sys.argv[1]
expected = {
    "weight": np.array([[-1.0, -0.5, 0.0], [0.5, 1.0, 1.5]], dtype=np.float32),
    "layers.0.bias": np.array([0.1, -2.5, 1e300, -0.0], dtype=np.float64),
    "special": np.array([np.nan, np.inf, -np.inf], dtype=np.float64),
    "step": np.array(9007199254740993, dtype=np.int64),
    "empty": np.zeros((2, 0, 3), dtype=np.float32),
    "encoder/grid": (np.arange(12, dtype=np.int64) - 6).reshape(2, 1, 3, 2),
    "d\u00e9calage": np.array([0.25], dtype=np.float32),
}


def check_array(name, got):
    want = expected[name]
    assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
    assert got.shape == want.shape, (name, got.shape, want.shape)
    assert got.tobytes() == want.tobytes(), (name, got, want)
)";

void check_loaded(const io::NamedTensors& loaded) {
    const io::NamedTensors expected = interop_tensors();
    REQUIRE(loaded.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        CAPTURE(expected[i].first);
        CHECK(loaded[i].first == expected[i].first);
        CHECK(same_tensor(loaded[i].second, expected[i].second));
    }
}

/// Writes NumPy's own files into the directory: savez.npz, savez_compressed.npz,
/// the tensor "weight" as .npy versions 1.0 to 3.0, and arrays xgrad rejects.
void write_numpy_files(const TemporaryDirectory& directory) {
    const std::string script = kPythonExpected + R"(
np.savez(os.path.join(directory, "savez.npz"), **expected)
np.savez_compressed(os.path.join(directory, "savez_compressed.npz"), **expected)
for major in (1, 2, 3):
    with open(os.path.join(directory, f"weight_v{major}.npy"), "wb") as file:
        np.lib.format.write_array(file, expected["weight"], version=(major, 0))

rejected = {
    "big_endian": np.arange(3, dtype=">f8"),
    "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "int32": np.arange(3, dtype=np.int32),
    "bool": np.array([True, False]),
    "structured": np.zeros(2, dtype=[("a", "<f4"), ("b", "<i8")]),
    "strings": np.array(["ab", "c"]),
}
for name, array in rejected.items():
    np.save(os.path.join(directory, name + ".npy"), array)
)";
    REQUIRE(run_python(directory, script) == 0);
}

}  // namespace

TEST_SUITE("io.numpy") {
    TEST_CASE("numpy loads xgrad npz") {
        require_numpy();
        TemporaryDirectory directory;
        io::save_npz(directory / "xgrad.npz", interop_tensors());

        const std::string script = kPythonExpected + R"(
path = os.path.join(directory, "xgrad.npz")
with zipfile.ZipFile(path) as archive:
    assert archive.testzip() is None, "CRC-32 mismatch"
    assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
with np.load(path) as archive:
    assert archive.files == list(expected), archive.files
    for name in expected:
        check_array(name, archive[name])
)";
        CHECK(run_python(directory, script) == 0);
    }

    TEST_CASE("numpy loads xgrad npy") {
        require_numpy();
        TemporaryDirectory directory;
        const io::NamedTensors tensors = interop_tensors();
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            io::save_npy(directory / (std::to_string(i) + ".npy"), tensors[i].second);
        }

        const std::string script = kPythonExpected + R"(
for index, name in enumerate(expected):
    path = os.path.join(directory, f"{index}.npy")
    check_array(name, np.load(path))
    with open(path, "rb") as file:
        assert np.lib.format.read_magic(file) == (1, 0)
        np.lib.format.read_array_header_1_0(file)
        assert file.tell() % 64 == 0, ("data offset", path, file.tell())
)";
        CHECK(run_python(directory, script) == 0);
    }

    TEST_CASE("xgrad loads numpy savez") {
        require_numpy();
        TemporaryDirectory directory;
        write_numpy_files(directory);
        check_loaded(io::load_npz(directory / "savez.npz"));
    }

    TEST_CASE("xgrad loads numpy savez_compressed") {
        require_numpy();
        TemporaryDirectory directory;
        write_numpy_files(directory);
        check_loaded(io::load_npz(directory / "savez_compressed.npz"));
    }

    TEST_CASE("xgrad loads npy versions 1 to 3") {
        require_numpy();
        TemporaryDirectory directory;
        write_numpy_files(directory);
        const Tensor expected = interop_tensors()[0].second;
        for (const int major : {1, 2, 3}) {
            CAPTURE(major);
            const auto path = directory / ("weight_v" + std::to_string(major) + ".npy");
            CHECK(std::to_integer<int>(io::read_file(path)[6]) == major);
            CHECK(same_tensor(io::load_npy(path), expected));
        }
    }

    TEST_CASE("xgrad rejects unsupported numpy arrays") {
        require_numpy();
        TemporaryDirectory directory;
        write_numpy_files(directory);
        const std::vector<std::pair<std::string, std::string>> cases = {
            {"big_endian", "big-endian data ('>f8') is not supported"},
            {"fortran", "fortran_order True is not supported"},
            {"int32", "unsupported dtype '<i4'"},
            {"bool", "unsupported dtype '|b1'"},
            {"structured", "unsupported dtype: structured dtypes"},
            {"strings", "unsupported dtype '<U2'"},
        };
        for (const auto& entry : cases) {
            // Named copies, not structured bindings: clang 14 cannot capture
            // those in the lambdas of CAPTURE and the checks below.
            const auto& name = std::get<0>(entry);
            const auto& problem = std::get<1>(entry);
            CAPTURE(name);
            const auto path = directory / (name + ".npy");
            const std::string message = io_error_message([&] { io::load_npy(path); });
            CAPTURE(message);
            CHECK(message.find(path.string() + ": ") == 0);
            CHECK(contains(message, problem));
        }
    }

    TEST_CASE("corrupt compressed archives are rejected") {
        require_numpy();
        TemporaryDirectory directory;
        write_numpy_files(directory);
        const std::vector<std::byte> good = io::read_file(directory / "savez_compressed.npz");
        const std::vector<std::size_t> centrals = find_all(good, "PK\x01\x02");
        REQUIRE(!centrals.empty());
        const std::size_t central = centrals[0];
        const std::size_t local = get_u32(good, central + 42);
        REQUIRE(get_u16(good, central + 10) == 8);  // deflate
        const std::uint32_t compressed_size = get_u32(good, central + 20);
        const std::uint32_t size = get_u32(good, central + 24);
        const std::size_t data = local + 30 + get_u16(good, local + 26) + get_u16(good, local + 28);

        /// Sets the compressed and uncompressed sizes of the first entry in both headers.
        const auto with_sizes = [&](std::uint32_t new_compressed_size, std::uint32_t new_size) {
            std::vector<std::byte> bytes = good;
            put_u32(bytes, central + 20, new_compressed_size);
            put_u32(bytes, local + 18, new_compressed_size);
            put_u32(bytes, central + 24, new_size);
            put_u32(bytes, local + 22, new_size);
            return bytes;
        };
        std::vector<std::byte> flipped = good;
        flipped[data + compressed_size / 2] ^= std::byte{0x5A};

        const std::vector<std::pair<std::vector<std::byte>, std::string>> cases = {
            {with_sizes(compressed_size, 0xFFFFFF00),
             "bytes of deflate data cannot expand to the 4294967040 bytes"},
            {with_sizes(compressed_size - 4, size), "the deflate data is truncated"},
            {with_sizes(compressed_size, size - 1), "the deflate data expands to more than"},
            {with_sizes(compressed_size, size + 1),
             "the deflate data expands to " + std::to_string(size) + " bytes"},
            {flipped, "corrupt archive: "},
        };
        for (const auto& entry : cases) {
            // Named copies, not structured bindings: clang 14 cannot capture
            // those in the lambdas of CAPTURE and the checks below.
            const auto& bytes = std::get<0>(entry);
            const auto& problem = std::get<1>(entry);
            CAPTURE(problem);
            const std::string message =
                io_error_message([&] { io::decode_npz(bytes, "compressed.npz"); });
            CAPTURE(message);
            CHECK(message.find("compressed.npz: entry 'weight.npy': ") == 0);
            CHECK(contains(message, problem));
        }
    }

    TEST_CASE("documented example runs") {
        require_numpy();
        TemporaryDirectory directory;
        const std::filesystem::path checkpoint = directory / "checkpoint.npz";

        // The C++ snippet of docs/file-formats.md, writing to a temporary directory.
        const xgrad::io::NamedTensors tensors = {
            {"layers.0.weight", xgrad::ones({2, 3})},
            {"step", xgrad::full({}, 100, xgrad::Dtype::int64)},
        };
        xgrad::io::save_npz(checkpoint, tensors);
        const xgrad::io::NamedTensors loaded = xgrad::io::load_npz(checkpoint);
        REQUIRE(loaded.size() == 2);
        CHECK(same_tensor(loaded[0].second, tensors[0].second));
        CHECK(same_tensor(loaded[1].second, tensors[1].second));

        // The Python snippet, with asserts in place of the printed values.
        const std::string script = R"(
import os
import sys

import numpy as np

os.chdir(sys.argv[1])
with np.load("checkpoint.npz") as checkpoint:
    assert checkpoint.files == ['layers.0.weight', 'step'], checkpoint.files
    weight = checkpoint["layers.0.weight"]
    assert weight.dtype == np.float32, weight.dtype
    assert weight.shape == (2, 3), weight.shape
    step = int(checkpoint["step"])
    assert step == 100, step

np.savez("from_numpy.npz", weight=weight * 2, step=np.int64(step + 1))
)";
        REQUIRE(run_python(directory, script) == 0);

        const io::NamedTensors from_numpy = io::load_npz(directory / "from_numpy.npz");
        REQUIRE(from_numpy.size() == 2);
        CHECK(from_numpy[0].first == "weight");
        CHECK(from_numpy[0].second.values<float>() == xt::xarray<float>({{2, 2, 2}, {2, 2, 2}}));
        CHECK(from_numpy[1].first == "step");
        CHECK(from_numpy[1].second.dtype() == Dtype::int64);
        CHECK(from_numpy[1].second.item() == 101);
    }
}

TEST_SUITE("io.numpy") {
    TEST_CASE("names that escape a directory are rejected on load") {
        require_numpy();
        TemporaryDirectory directory;
        const std::string script = R"(
import os, sys
import numpy as np
np.savez(os.path.join(sys.argv[1], "escape.npz"), **{"../escape": np.zeros(2)})
)";
        REQUIRE(run_python(directory, script) == 0);
        CHECK_THROWS_WITH_AS(io::load_npz(directory / "escape.npz"),
                             doctest::Contains("has an empty, \".\" or \"..\" part"), io_error);
    }
}

TEST_SUITE("io.numpy") {
    TEST_CASE("numpy reads int8 and uint8") {
        require_numpy();
        TemporaryDirectory directory;
        io::save_npz(directory / "bytes.npz", {{"q", Tensor(xt::xarray<std::int8_t>{-128, -1, 127})},
                                              {"u", Tensor(xt::xarray<std::uint8_t>{0, 200, 255})}});
        const std::string script = R"(
import os, sys
import numpy as np
with np.load(os.path.join(sys.argv[1], "bytes.npz")) as archive:
    assert archive["q"].dtype == np.int8 and archive["q"].tolist() == [-128, -1, 127], archive["q"]
    assert archive["u"].dtype == np.uint8 and archive["u"].tolist() == [0, 200, 255], archive["u"]
np.save(os.path.join(sys.argv[1], "back.npy"), np.array([-7, 7], dtype=np.int8))
)";
        REQUIRE(run_python(directory, script) == 0);
        CHECK(io::load_npy(directory / "back.npy").values<std::int8_t>() == xt::xarray<std::int8_t>{-7, 7});
    }
}
