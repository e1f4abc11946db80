#include "progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdlib>

namespace xgrad::examples {

namespace {

constexpr std::size_t kBarWidth = 24;

// Whether to redraw the bar in place. Open MPI gives the ranks it starts a
// pseudo-terminal even when mpirun's own output goes to a file, so under an
// MPI launcher (Open MPI's or a PMI/PMIx one) the display prints lines.
bool draws_in_place(std::FILE* out) {
    if (::isatty(::fileno(out)) == 0) {
        return false;
    }
    for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
        if (std::getenv(variable) != nullptr) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string format_duration(double seconds) {
    char text[32];
    if (seconds < 60.0) {
        std::snprintf(text, sizeof text, "%.1f s", seconds);
    } else {
        const auto whole = static_cast<long>(std::lround(seconds));
        std::snprintf(text, sizeof text, "%ld:%02ld", whole / 60, whole % 60);
    }
    return text;
}

Progress::Progress(std::string label, std::size_t total, std::FILE* out)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      terminal_(draws_in_place(out)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::elapsed_seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::line(std::size_t done, const std::string& status, bool with_bar) const {
    const double seconds = elapsed_seconds();
    std::string text = label_ + " ";
    if (with_bar) {
        const std::size_t filled = total_ == 0 ? kBarWidth : kBarWidth * done / total_;
        text += "[" + std::string(filled, '=') + (filled < kBarWidth ? ">" : "") +
                std::string(kBarWidth - std::min(filled + 1, kBarWidth), ' ') + "] ";
    }
    char counts[160];
    const double rate = seconds > 0.0 ? static_cast<double>(examples_) / seconds : 0.0;
    std::snprintf(counts, sizeof counts, "%zu/%zu", done, total_);
    text += counts;
    if (!status.empty()) {
        text += "  " + status;
    }
    std::snprintf(counts, sizeof counts, "  %.0f ex/s", rate);
    text += counts;
    if (with_bar && done > 0 && done < total_) {
        const double left = seconds * static_cast<double>(total_ - done) / static_cast<double>(done);
        text += "  " + format_duration(left) + " left";
    } else {
        text += "  " + format_duration(seconds);
    }
    return text;
}

void Progress::update(std::size_t done, std::size_t examples, const std::string& status) {
    done_ = done;
    examples_ = examples;
    if (!terminal_) {
        return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) {
        return;
    }
    last_draw_ = now;
    // \r returns to the line start; \033[K clears what a longer line left.
    std::fprintf(out_, "\r%s\033[K", line(done, status, true).c_str());
    std::fflush(out_);
}

void Progress::finish(const std::string& status) {
    if (terminal_) {
        std::fprintf(out_, "\r%s\033[K\n", line(done_, status, true).c_str());
    } else {
        std::fprintf(out_, "%s\n", line(done_, status, false).c_str());
    }
    std::fflush(out_);
}

}  // namespace xgrad::examples
