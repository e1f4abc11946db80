#include <ostream>
#include <stdexcept>

#include "io_testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

TEST_SUITE("io.file") {
    TEST_CASE("atomic write creates and replaces") {
        TemporaryDirectory directory;
        const auto path = directory / "model.bin";

        io::write_file_atomically(path, to_bytes("first"));
        CHECK(read_text(path) == "first");

        io::write_file_atomically(path, [](std::ostream& out) { out << "second, longer"; });
        CHECK(read_text(path) == "second, longer");
        CHECK(directory.file_names() == std::vector<std::string>{"model.bin"});
    }

    TEST_CASE("atomic write of empty file") {
        TemporaryDirectory directory;
        const auto path = directory / "empty.bin";
        io::write_file_atomically(path, std::span<const std::byte>{});
        CHECK(std::filesystem::file_size(path) == 0);
    }

    TEST_CASE("buffered writes keep every byte") {
        // Mixes single characters, small writes and blocks larger than the
        // 64 KiB stream buffer, so every path through it is taken.
        TemporaryDirectory directory;
        const auto path = directory / "mixed.bin";
        std::string expected;
        io::write_file_atomically(path, [&expected](std::ostream& out) {
            for (int round = 0; round < 40; ++round) {
                const std::string block(static_cast<std::size_t>(round) * 4099,
                                        static_cast<char>('a' + round % 26));
                out.put('#');
                out.write(block.data(), static_cast<std::streamsize>(block.size()));
                expected += '#';
                expected += block;
            }
        });
        CHECK(read_text(path) == expected);
    }

    TEST_CASE("throwing writer keeps previous file") {
        TemporaryDirectory directory;
        const auto path = directory / "model.bin";
        io::write_file_atomically(path, to_bytes("previous"));

        const auto interrupted = [](std::ostream& out) {
            out << std::string(100000, 'x');
            throw std::runtime_error("simulated failure after 100000 bytes");
        };
        CHECK_THROWS_WITH_AS(io::write_file_atomically(path, interrupted),
                             doctest::Contains("simulated failure"), std::runtime_error);

        CHECK(read_text(path) == "previous");
        CHECK(directory.file_names() == std::vector<std::string>{"model.bin"});
    }

    TEST_CASE("failed stream keeps previous file") {
        TemporaryDirectory directory;
        const auto path = directory / "model.bin";
        io::write_file_atomically(path, to_bytes("previous"));

        const std::string message = io_error_message([&] {
            io::write_file_atomically(path, [](std::ostream& out) {
                out << "partial";
                out.setstate(std::ios::badbit);
            });
        });
        CHECK(message.find(path.string() + ": writing ") == 0);
        CHECK(contains(message, "failed state"));
        CHECK(read_text(path) == "previous");
        CHECK(directory.file_names() == std::vector<std::string>{"model.bin"});
    }

    TEST_CASE("missing directory names path and error") {
        TemporaryDirectory directory;
        const auto path = directory / "missing" / "model.bin";
        const std::string message =
            io_error_message([&] { io::write_file_atomically(path, to_bytes("x")); });
        CHECK(message.find(path.string() + ": cannot create temporary file") == 0);
        CHECK(contains(message, "No such file or directory"));
    }

    TEST_CASE("failed rename removes temporary file") {
        // rename() cannot replace a non-empty directory with a file.
        TemporaryDirectory directory;
        const auto path = directory / "occupied";
        std::filesystem::create_directory(path);
        write_text(path / "inside", "keep");

        const std::string message =
            io_error_message([&] { io::write_file_atomically(path, to_bytes("x")); });
        CHECK(message.find(path.string() + ": renaming ") == 0);
        CHECK(contains(message, "Is a directory"));
        CHECK(directory.file_names() == std::vector<std::string>{"occupied"});
        CHECK(read_text(path / "inside") == "keep");
    }

    TEST_CASE("directory path is rejected") {
        TemporaryDirectory directory;
        const std::string message = io_error_message(
            [&] { io::write_file_atomically(directory.path() / "", to_bytes("x")); });
        CHECK(contains(message, "the path names a directory"));
        CHECK(directory.file_names().empty());
    }

    TEST_CASE("read_file reports errors") {
        TemporaryDirectory directory;
        const auto missing = directory / "missing.bin";
        const std::string missing_message = io_error_message([&] { io::read_file(missing); });
        CHECK(missing_message.find(missing.string() + ": cannot open") == 0);
        CHECK(contains(missing_message, "No such file or directory"));

        const std::string directory_message =
            io_error_message([&] { io::read_file(directory.path()); });
        CHECK(directory_message.find(directory.path().string() + ": ") == 0);
        CHECK(contains(directory_message, "not a regular file"));
    }

    TEST_CASE("read_file returns every byte") {
        TemporaryDirectory directory;
        const auto path = directory / "bytes.bin";
        std::string text;
        for (int i = 0; i < 256; ++i) {
            text += static_cast<char>(i);
        }
        write_text(path, text);
        CHECK(read_text(path) == text);
    }
}
