// A checkpoint write that fails or dies at any point leaves the previous
// checkpoint loadable. Failures are real OS failures, not simulated in the
// library: a child process writes under a file-size limit (RLIMIT_FSIZE,
// so write() fails with EFBIG part-way through), or is killed with SIGKILL
// while it writes.

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "testing.hpp"

using namespace xgrad;

namespace {

struct ScratchDir {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("xgrad-crash-test-" + std::to_string(::getpid()));
    ScratchDir() { std::filesystem::create_directories(path); }
    ~ScratchDir() { std::filesystem::remove_all(path); }
};

std::shared_ptr<nn::Sequential> make_model(std::uint64_t seed, std::size_t width = 64) {
    Generator generator(seed);
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Linear>(32, width, generator), std::make_shared<nn::Tanh>(),
        std::make_shared<nn::Linear>(width, 4, generator)});
}

bool same_values(const nn::Module& a, const nn::Module& b) {
    const auto left = a.state_dict();
    const auto right = b.state_dict();
    for (std::size_t i = 0; i < left.size(); ++i) {
        if (left[i].second.values<float>() != right[i].second.values<float>()) {
            return false;
        }
    }
    return left.size() == right.size();
}

std::size_t files_in(const std::filesystem::path& directory) {
    return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(directory),
                                                  std::filesystem::directory_iterator()));
}

}  // namespace

TEST_SUITE("crash safety") {
    TEST_CASE("a save failing at any byte keeps the previous checkpoint") {
        ScratchDir dir;
        const auto path = dir.path / "checkpoint.npz";
        auto original = make_model(1);
        optim::Adam optimizer(original->parameters());
        save_checkpoint(path, *original, optimizer);
        const auto size = std::filesystem::file_size(path);

        auto replacement = make_model(2);
        optim::Adam replacement_optimizer(replacement->parameters());
        // File-size limits from 0 to just below a full checkpoint, so the
        // write fails at the start, in headers, in the middle of tensor data
        // and in the final directory.
        for (std::uintmax_t limit : {std::uintmax_t{0}, std::uintmax_t{1}, std::uintmax_t{40},
                                     std::uintmax_t{200}, size / 4, size / 2, size - 100, size - 1}) {
            CAPTURE(limit);
            const pid_t child = ::fork();
            REQUIRE(child >= 0);
            if (child == 0) {
                ::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG
                const rlimit file_size{static_cast<rlim_t>(limit), static_cast<rlim_t>(limit)};
                ::setrlimit(RLIMIT_FSIZE, &file_size);
                try {
                    save_checkpoint(path, *replacement, replacement_optimizer);
                } catch (const io_error&) {
                    ::_exit(0);  // the expected failure
                }
                ::_exit(1);  // the save should not have succeeded
            }
            int status = 0;
            ::waitpid(child, &status, 0);
            CHECK(WIFEXITED(status));
            CHECK(WEXITSTATUS(status) == 0);

            auto loaded = make_model(3);
            optim::Adam loaded_optimizer(loaded->parameters());
            load_checkpoint(path, *loaded, loaded_optimizer);
            CHECK(same_values(*loaded, *original));
            CHECK(files_in(dir.path) == 1);  // no temporary file left behind
        }
    }

    TEST_CASE("a writer killed at random moments never damages the checkpoint") {
        ScratchDir dir;
        const auto path = dir.path / "checkpoint.npz";
        auto first = make_model(4, 512);
        auto second = make_model(5, 512);
        save_model(*first, path);

        for (int round = 0; round < 8; ++round) {
            CAPTURE(round);
            const pid_t child = ::fork();
            REQUIRE(child >= 0);
            if (child == 0) {
                for (;;) {  // alternate two models until killed
                    save_model(*second, path);
                    save_model(*first, path);
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5 + 7 * round));
            ::kill(child, SIGKILL);
            int status = 0;
            ::waitpid(child, &status, 0);
            CHECK(WIFSIGNALED(status));

            // The target is always one of the two complete checkpoints. A
            // killed writer may leave its temporary file, which is never read.
            auto loaded = make_model(6, 512);
            REQUIRE_NOTHROW(load_model(*loaded, path));
            CHECK((same_values(*loaded, *first) || same_values(*loaded, *second)));
        }
    }
}
