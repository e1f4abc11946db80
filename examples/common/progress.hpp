#pragma once

// A progress display for loops in the example programs. On a terminal it
// redraws one line in place: bar, steps done, status, examples per second and
// time left. When the output is a file or a pipe, or the program runs under
// mpirun, it prints one plain line when the loop finishes, so logs stay
// readable.

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace xgrad::examples {

class Progress {
public:
    /// `label` starts every line; `total` is the number of steps.
    Progress(std::string label, std::size_t total, std::FILE* out = stdout);

    /// Reports `done` steps and `examples` processed so far, with a status
    /// such as "loss 0.4321". Redraws at most ten times a second.
    void update(std::size_t done, std::size_t examples, const std::string& status);

    /// Prints the final line, on a terminal and off it.
    void finish(const std::string& status);

    double elapsed_seconds() const;

private:
    std::string line(std::size_t done, const std::string& status, bool with_bar) const;

    std::string label_;
    std::size_t total_;
    std::FILE* out_;
    bool terminal_;
    std::size_t done_ = 0;
    std::size_t examples_ = 0;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
};

/// Formats seconds as "1:05" or "12.3 s".
std::string format_duration(double seconds);

}  // namespace xgrad::examples
