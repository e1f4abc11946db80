#include <ostream>
#include <stdexcept>

#include "io_testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

const std::string kLocalSignature = "PK\x03\x04";
const std::string kCentralSignature = "PK\x01\x02";

io::NamedTensors two_tensors() {
    return {{"a", make_tensor(Dtype::float32, {2, 3})}, {"b", make_tensor(Dtype::int64, {4})}};
}

/// Replaces every occurrence of `from` with `to`, which must have the same size.
void replace_all(std::vector<std::byte>& bytes, const std::string& from, const std::string& to) {
    REQUIRE(from.size() == to.size());
    for (const std::size_t at : find_all(bytes, from)) {
        for (std::size_t i = 0; i < to.size(); ++i) {
            bytes[at + i] = static_cast<std::byte>(to[i]);
        }
    }
}

/// Recomputes the CRC-32 of every entry in both headers after a test
/// changed an entry's data, so the reader gets past its CRC check.
void fix_crcs(std::vector<std::byte>& archive) {
    for (const std::size_t central : find_all(archive, kCentralSignature)) {
        const std::size_t local = get_u32(archive, central + 42);
        const std::size_t data =
            local + 30 + get_u16(archive, local + 26) + get_u16(archive, local + 28);
        const std::uint32_t crc =
            crc32_of(std::span(archive).subspan(data, get_u32(archive, central + 20)));
        put_u32(archive, central + 16, crc);
        put_u32(archive, local + 14, crc);
    }
}

std::size_t end_record_offset(const std::vector<std::byte>& archive) {
    return archive.size() - 22;
}

}  // namespace

TEST_SUITE("io.npz") {
    TEST_CASE("round trips every dtype and rank") {
        io::NamedTensors tensors;
        for (const Dtype dtype : {Dtype::float32, Dtype::float64, Dtype::int64}) {
            for (const Shape& shape :
                 std::vector<Shape>{{}, {5}, {2, 3}, {2, 0, 3}, {2, 3, 1, 4}}) {
                tensors.emplace_back(std::string(dtype_name(dtype)) + "/rank" +
                                         std::to_string(shape.size()) +
                                         (shape_size(shape) == 0 ? ".empty" : ""),
                                     make_tensor(dtype, shape));
            }
        }
        TemporaryDirectory directory;
        const auto path = directory / "all.npz";
        io::save_npz(path, tensors);

        for (const io::NamedTensors& loaded :
             {io::load_npz(path), io::decode_npz(io::encode_npz(tensors))}) {
            REQUIRE(loaded.size() == tensors.size());
            for (std::size_t i = 0; i < tensors.size(); ++i) {
                CAPTURE(tensors[i].first);
                CHECK(loaded[i].first == tensors[i].first);
                CHECK(same_tensor(loaded[i].second, tensors[i].second));
            }
        }
        CHECK(directory.file_names() == std::vector<std::string>{"all.npz"});
    }

    TEST_CASE("keeps the given order") {
        const io::NamedTensors tensors = {
            {"z", scalar(1.0)}, {"a", scalar(2.0)}, {"m", scalar(3.0)}};
        const io::NamedTensors loaded = io::decode_npz(io::encode_npz(tensors));
        REQUIRE(loaded.size() == 3);
        CHECK(loaded[0].first == "z");
        CHECK(loaded[1].first == "a");
        CHECK(loaded[2].first == "m");
        CHECK(loaded[2].second.item() == 3.0);
    }

    TEST_CASE("empty archive round trips") {
        const std::vector<std::byte> archive = io::encode_npz({});
        CHECK(archive.size() == 22);
        CHECK(io::decode_npz(archive).empty());
    }

    TEST_CASE("writes stored entries deterministically") {
        const std::vector<std::byte> archive = io::encode_npz(two_tensors());
        CHECK(archive == io::encode_npz(two_tensors()));

        const std::vector<std::size_t> locals = find_all(archive, kLocalSignature);
        REQUIRE(locals.size() == 2);
        CHECK(locals[0] == 0);
        for (const std::size_t local : locals) {
            CHECK(get_u16(archive, local + 4) == 20);       // version needed: 2.0
            CHECK(get_u16(archive, local + 8) == 0);        // method: stored
            CHECK(get_u16(archive, local + 12) == 0x0021);  // date: 1980-01-01
        }
        const std::string first_name =
            to_text(std::span(archive).subspan(30, get_u16(archive, 26)));
        CHECK(first_name == "a.npy");
        const std::vector<std::byte> first_data = io::encode_npy(two_tensors()[0].second);
        CHECK(get_u32(archive, 14) == crc32_of(first_data));
        CHECK(get_u32(archive, 18) == first_data.size());
    }

    TEST_CASE("accepts nested and non-ASCII names") {
        const io::NamedTensors tensors = {{"layers.0.weight", scalar(1.0)},
                                          {"encoder/proj/bias", scalar(2.0)},
                                          {"gewicht \xc3\xa4", scalar(3.0)},
                                          {"x.npy", scalar(4.0)}};
        const std::vector<std::byte> archive = io::encode_npz(tensors);
        const io::NamedTensors loaded = io::decode_npz(archive);
        REQUIRE(loaded.size() == tensors.size());
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            CHECK(loaded[i].first == tensors[i].first);
        }
        // The non-ASCII name sets the UTF-8 flag (general purpose bit 11).
        const std::vector<std::size_t> centrals = find_all(archive, kCentralSignature);
        REQUIRE(centrals.size() == 4);
        CHECK(get_u16(archive, centrals[1] + 8) == 0);
        CHECK(get_u16(archive, centrals[2] + 8) == 0x0800);
    }

    TEST_CASE("rejects invalid tensor names") {
        TemporaryDirectory directory;
        const auto path = directory / "names.npz";
        const std::vector<std::pair<std::string, const char*>> cases = {
            {"", "a tensor name is empty"},
            {"/absolute", "starts with '/'"},
            {"a//b", "empty, \".\" or \"..\" part"},
            {"trailing/", "empty, \".\" or \"..\" part"},
            {"a/../b", "empty, \".\" or \"..\" part"},
            {".", "empty, \".\" or \"..\" part"},
            {"back\\slash", "contains a backslash"},
            {std::string("nul\0byte", 8), "contains a control character"},
            {"new\nline", "contains a control character"},
            {"\xff\xfe", "is not valid UTF-8"},
            {"\xc0\xaf", "is not valid UTF-8"},
            {std::string(65532, 'n'), "too long"},
        };
        for (const auto& entry : cases) {
            // Named copies, not structured bindings: clang 14 cannot capture
            // those in the lambdas of CAPTURE and the checks below.
            const auto& name = std::get<0>(entry);
            const auto& problem = std::get<1>(entry);
            CAPTURE(name.substr(0, 20));
            CHECK_THROWS_WITH_AS(io::save_npz(path, {{name, scalar(1.0)}}),
                                 doctest::Contains(problem), value_error);
            CHECK_THROWS_WITH_AS(io::check_tensor_name(name, "save_npz"),
                                 doctest::Contains("save_npz: "), value_error);
        }
        CHECK_NOTHROW(io::check_tensor_name(std::string(65531, 'n')));
        CHECK(directory.file_names().empty());
    }

    TEST_CASE("rejects duplicate and undefined tensors") {
        TemporaryDirectory directory;
        const auto path = directory / "bad.npz";
        CHECK_THROWS_WITH_AS(io::save_npz(path, {{"w", scalar(1.0)}, {"w", scalar(2.0)}}),
                             doctest::Contains("save_npz: duplicate tensor name 'w'"), value_error);
        CHECK_THROWS_WITH_AS(io::save_npz(path, {{"w", scalar(1.0)}, {"v", Tensor()}}),
                             doctest::Contains("save_npz: tensor 'v' is undefined"), value_error);
        CHECK_THROWS_WITH_AS(io::encode_npz({{"w", Tensor()}}),
                             doctest::Contains("encode_npz: tensor 'w' is undefined"), value_error);
        CHECK(directory.file_names().empty());
    }

    TEST_CASE("rejects more entries than ZIP allows") {
        // Without ZIP64 an archive has at most 65534 entries, because a
        // count of 65535 means "see the ZIP64 record".
        io::NamedTensors tensors;
        const Tensor shared_value = scalar(1.0);
        for (int i = 0; i < 65535; ++i) {
            tensors.emplace_back("t" + std::to_string(i), shared_value);
        }
        TemporaryDirectory directory;
        const auto path = directory / "many.npz";
        const std::string message = io_error_message([&] { io::save_npz(path, tensors); });
        CHECK(message.find(path.string() + ": ") == 0);
        CHECK(contains(message, "at most 65534 entries, not 65535"));
        CHECK(directory.file_names().empty());
    }

    TEST_CASE("interrupted save keeps previous archive") {
        TemporaryDirectory directory;
        const auto path = directory / "checkpoint.npz";
        const io::NamedTensors previous = two_tensors();
        io::save_npz(path, previous);

        // A writer that fails halfway through a newer archive, as a full disk
        // or a killed process would.
        const std::vector<std::byte> newer =
            io::encode_npz({{"a", make_tensor(Dtype::float64, {50, 50})}});
        const auto interrupted = [&newer](std::ostream& out) {
            out.write(reinterpret_cast<const char*>(newer.data()),
                      static_cast<std::streamsize>(newer.size() / 2));
            throw std::runtime_error("simulated failure halfway");
        };
        CHECK_THROWS_AS(io::write_file_atomically(path, interrupted), std::runtime_error);

        const io::NamedTensors loaded = io::load_npz(path);
        REQUIRE(loaded.size() == 2);
        CHECK(same_tensor(loaded[0].second, previous[0].second));
        CHECK(same_tensor(loaded[1].second, previous[1].second));
        CHECK(directory.file_names() == std::vector<std::string>{"checkpoint.npz"});
    }

    TEST_CASE("rejects broken archives naming the problem") {
        struct Case {
            std::string name;
            std::vector<std::byte> bytes;
            std::string problem;
        };
        const std::vector<std::byte> good = io::encode_npz(two_tensors());
        const std::vector<std::size_t> locals = find_all(good, kLocalSignature);
        const std::vector<std::size_t> centrals = find_all(good, kCentralSignature);
        REQUIRE(locals.size() == 2);
        REQUIRE(centrals.size() == 2);
        const std::size_t end = end_record_offset(good);
        const std::size_t b_data = locals[1] + 30 + 5;
        const auto patched = [&good](const std::function<void(std::vector<std::byte>&)>& patch) {
            std::vector<std::byte> bytes = good;
            patch(bytes);
            return bytes;
        };
        const auto truncated = [&good](std::size_t size) {
            return std::vector<std::byte>(good.begin(),
                                          good.begin() + static_cast<std::ptrdiff_t>(size));
        };

        std::vector<Case> cases = {
            {"empty", {}, "not a ZIP archive (an .npz file is one), or truncated"},
            {"cut at 10 bytes", truncated(10), "or truncated"},
            {"cut in first entry", truncated(locals[0] + 100),
             "or truncated: no end of central directory record"},
            {"cut in second entry", truncated(b_data + 3), "or truncated"},
            {"cut in central directory", truncated(centrals[1] + 20), "or truncated"},
            {"cut in end record", truncated(good.size() - 1), "or truncated"},
            {"bytes missing in the middle",
             patched([&](auto& bytes) { bytes.erase(bytes.begin() + 100, bytes.begin() + 110); }),
             "truncated or corrupt archive: the central directory"},
            {"trailing bytes", patched([](auto& bytes) { bytes.push_back(std::byte{0}); }),
             "no end of central directory record"},
            {"npy file", io::encode_npy(scalar(1.0)), "not a ZIP archive"},
            {"bad CRC", patched([&](auto& bytes) { bytes[centrals[0] - 1] ^= std::byte{0x01}; }),
             "entry 'b.npy': corrupt archive: CRC-32 mismatch"},
            {"duplicate names", patched([](auto& bytes) { replace_all(bytes, "b.npy", "a.npy"); }),
             "entry 'a.npy': duplicate entry name"},
            {"not an npy entry", patched([](auto& bytes) { replace_all(bytes, "b.npy", "b.txt"); }),
             "entry 'b.txt': not a .npy file"},
            {"encrypted", patched([&](auto& bytes) { put_u16(bytes, centrals[0] + 8, 1); }),
             "entry 'a.npy': the entry is encrypted"},
            {"AES encrypted", patched([&](auto& bytes) { put_u16(bytes, centrals[0] + 10, 99); }),
             "entry 'a.npy': the entry is encrypted"},
            {"bzip2", patched([&](auto& bytes) { put_u16(bytes, centrals[1] + 10, 12); }),
             "entry 'b.npy': unsupported compression method 12 (bzip2)"},
            {"ZIP64 sizes",
             patched([&](auto& bytes) { put_u32(bytes, centrals[0] + 24, 0xFFFFFFFF); }),
             "entry 'a.npy': ZIP64 sizes or offsets are not supported"},
            {"ZIP64 entry count", patched([&](auto& bytes) { put_u16(bytes, end + 10, 0xFFFF); }),
             "ZIP64 archives are not supported"},
            {"ZIP64 locator", patched([&](auto& bytes) {
                 std::vector<std::byte> locator = to_bytes("PK\x06\x07");
                 locator.resize(20);
                 bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(end), locator.begin(),
                              locator.end());
             }),
             "ZIP64 archives are not supported"},
            {"split archive", patched([&](auto& bytes) { put_u16(bytes, end + 4, 1); }),
             "split (multi-disk) ZIP archives are not supported"},
            {"entry count too large", patched([&](auto& bytes) {
                 put_u16(bytes, end + 8, 3);
                 put_u16(bytes, end + 10, 3);
             }),
             "corrupt archive: 3 entries cannot fit"},
            {"central directory offset", patched([&](auto& bytes) { put_u32(bytes, end + 16, 1); }),
             "corrupt archive: "},
            {"local header offset", patched([&](auto& bytes) {
                 put_u32(bytes, centrals[1] + 42, static_cast<std::uint32_t>(centrals[0]));
             }),
             "entry 'b.npy': truncated or corrupt archive: the local header at offset"},
            {"no local header", patched([&](auto& bytes) { put_u32(bytes, centrals[1] + 42, 7); }),
             "entry 'b.npy': corrupt archive: no local file header at offset 7"},
            {"local name differs",
             patched([&](auto& bytes) { bytes[locals[1] + 30] = std::byte{'c'}; }),
             "entry 'b.npy': corrupt archive: the local header names the entry 'c.npy'"},
            {"local CRC differs",
             patched([&](auto& bytes) { bytes[locals[0] + 14] ^= std::byte{0x01}; }),
             "entry 'a.npy': corrupt archive: the local header and the central directory disagree"},
            {"stored sizes differ",
             patched([&](auto& bytes) { put_u32(bytes, centrals[0] + 20, 7); }),
             "entry 'a.npy': corrupt archive: a stored entry has compressed size 7"},
            {"data past directory", patched([&](auto& bytes) {
                 const std::uint32_t size = get_u32(bytes, centrals[1] + 20) + 40;
                 for (const std::size_t offset :
                      {centrals[1] + 20, centrals[1] + 24, locals[1] + 18, locals[1] + 22}) {
                     put_u32(bytes, offset, size);
                 }
             }),
             "entry 'b.npy': truncated or corrupt archive: the entry's data extends past"},
            {"overlapping entries", patched([&](auto& bytes) {
                 const std::uint32_t size = get_u32(bytes, centrals[0] + 20) + 10;
                 for (const std::size_t offset :
                      {centrals[0] + 20, centrals[0] + 24, locals[0] + 18, locals[0] + 22}) {
                     put_u32(bytes, offset, size);
                 }
             }),
             "corrupt archive: entries 'a.npy' and 'b.npy' overlap"},
            {"unsupported dtype inside", patched([](auto& bytes) {
                 replace_all(bytes, "'<f4'", "'<i4'");
                 fix_crcs(bytes);
             }),
             "entry 'a.npy': unsupported dtype '<i4'"},
            {"truncated npy inside", patched([&](auto& bytes) {
                 put_u16(bytes, locals[1] + 30 + 5 + 8, 200);  // the .npy header length of entry b
                 fix_crcs(bytes);
             }),
             "entry 'b.npy': truncated .npy file: the header needs 200 bytes"},
        };

        for (const Case& c : cases) {
            CAPTURE(c.name);
            const std::string source = c.name + ".npz";
            const std::string message = io_error_message([&] { io::decode_npz(c.bytes, source); });
            CAPTURE(message);
            CHECK(message.find(source + ": ") == 0);
            CHECK(contains(message, c.problem));
        }
    }

    TEST_CASE("load_npz names the file") {
        TemporaryDirectory directory;
        const auto path = directory / "broken.npz";
        const std::vector<std::byte> archive = io::encode_npz(two_tensors());
        write_text(path, to_text(archive).substr(0, archive.size() / 2));
        CHECK(io_error_message([&] {
                  io::load_npz(path);
              }).find(path.string() + ": not a ZIP archive") == 0);

        const auto missing = directory / "missing.npz";
        const std::string message = io_error_message([&] { io::load_npz(missing); });
        CHECK(message.find(missing.string() + ": cannot open") == 0);
        CHECK(contains(message, "No such file or directory"));
    }
}
