#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "testing.hpp"

using namespace xgrad;
using Bytes = std::vector<std::uint8_t>;

namespace {

// A scratch directory for this test binary, removed at exit.
struct ScratchDir {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("xgrad-idx-test-" + std::to_string(::getpid()));
    ScratchDir() { std::filesystem::create_directories(path); }
    ~ScratchDir() { std::filesystem::remove_all(path); }
};

const ScratchDir& scratch() {
    static ScratchDir dir;
    return dir;
}

std::filesystem::path write_file(const std::string& name, const Bytes& bytes) {
    const auto path = scratch().path / name;
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path;
}

std::filesystem::path write_gzip(const std::string& name, const Bytes& bytes) {
    const auto path = scratch().path / name;
    gzFile file = gzopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(file);
    return path;
}

Bytes read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// An IDX header: two zero bytes, the type code, the rank, big-endian extents.
Bytes header(std::uint8_t type, const std::vector<std::uint32_t>& extents) {
    Bytes bytes = {0, 0, type, static_cast<std::uint8_t>(extents.size())};
    for (std::uint32_t extent : extents) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            bytes.push_back(static_cast<std::uint8_t>(extent >> shift));
        }
    }
    return bytes;
}

Bytes concat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// A 2 x 3 uint8 image file with values 0..5.
Bytes small_image() { return concat(header(0x08, {2, 3}), {0, 1, 2, 3, 4, 5}); }

void check_rejected(const std::filesystem::path& path, const std::string& problem) {
    CAPTURE(path.string());
    CHECK_THROWS_WITH_AS(data::read_idx(path), doctest::Contains(problem.c_str()), io_error);
    CHECK_THROWS_WITH_AS(data::read_idx(path), doctest::Contains(path.filename().string().c_str()), io_error);
}

}  // namespace

TEST_SUITE("idx") {
    TEST_CASE("reads raw and gzip files") {
        for (const auto& path : {write_file("small.idx", small_image()),
                                 write_gzip("small.idx.gz", small_image())}) {
            CAPTURE(path.string());
            const data::IdxFile file = data::read_idx(path);
            CHECK(file.type == data::IdxType::uint8);
            CHECK(file.shape == Shape{2, 3});
            CHECK(data::idx_to_tensor(file, Dtype::int64).values<std::int64_t>() ==
                  xt::xarray<std::int64_t>{{0, 1, 2}, {3, 4, 5}});
        }
    }

    TEST_CASE("decodes big-endian types") {
        // int16 -2 and 258, float32 1.5 (0x3fc00000), float64 -0.25.
        const auto int16 = write_file("int16.idx", concat(header(0x0B, {2}), {0xff, 0xfe, 0x01, 0x02}));
        CHECK(data::idx_to_tensor(data::read_idx(int16), Dtype::int64).values<std::int64_t>() ==
              xt::xarray<std::int64_t>{-2, 258});
        const auto float32 = write_file("float32.idx", concat(header(0x0D, {1}), {0x3f, 0xc0, 0x00, 0x00}));
        CHECK(data::idx_to_tensor(data::read_idx(float32), Dtype::float64).item() == 1.5);
        const auto float64 = write_file(
            "float64.idx", concat(header(0x0E, {1}), {0xbf, 0xd0, 0, 0, 0, 0, 0, 0}));
        CHECK(data::idx_to_tensor(data::read_idx(float64), Dtype::float64).item() == -0.25);
        const auto int8 = write_file("int8.idx", concat(header(0x09, {1}), {0x80}));
        CHECK(data::idx_to_tensor(data::read_idx(int8), Dtype::float32).item() == -128.0);
    }

    TEST_CASE("rejects broken files") {
        check_rejected(scratch().path / "missing.idx", "cannot open");
        check_rejected(write_file("empty.idx", {}), "truncated");
        check_rejected(write_file("magic.idx", concat({1, 0, 8, 1, 0, 0, 0, 1}, {7})),
                       "not an IDX file");
        check_rejected(write_file("type.idx", concat(header(0x07, {1}), {7})),
                       "unknown element type code 7");
        check_rejected(write_file("short-header.idx", {0, 0, 8, 3, 0, 0}), "truncated: the header");
        Bytes truncated = small_image();
        truncated.pop_back();
        check_rejected(write_file("short-data.idx", truncated), "needs 6 bytes of data, the file has 5");
        check_rejected(write_file("trailing.idx", concat(small_image(), {9, 9})),
                       "2 bytes after the data");
        check_rejected(write_file("huge.idx", header(0x0E, {65535, 65535, 65535})),
                       "the reader's limit");
    }

    TEST_CASE("rejects broken gzip files") {
        const Bytes gzip = read_bytes(write_gzip("good.idx.gz", small_image()));
        check_rejected(write_file("cut.idx.gz", Bytes(gzip.begin(), gzip.begin() + 15)), "gzip");
        Bytes corrupt = gzip;
        corrupt[12] ^= 0xff;
        corrupt[13] ^= 0xff;
        check_rejected(write_file("corrupt.idx.gz", corrupt), "gzip");
        check_rejected(write_file("trailing.idx.gz", concat(gzip, {1, 2, 3})),
                       "after the end of the gzip stream");
        Bytes more = small_image();
        more.push_back(1);
        check_rejected(write_gzip("more.idx.gz", more), "more data than its dimensions describe");
    }
}

TEST_SUITE("idx") {
    TEST_CASE("huge extents beside a zero one are rejected") {
        // Found by fuzzing: a zero extent made the element count 0, but
        // xtensor's strides of the other extents overflowed.
        check_rejected(write_file("zero-and-huge.idx", header(0x08, {0, 4294967295u, 4294967295u, 4294967295u})),
                       "the reader's limit");
    }
}
