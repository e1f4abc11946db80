#pragma once

// Command-line flags for the example programs: --name value or --name=value,
// with --help listing every flag, its default and what it sets.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace xgrad::examples {

class Flags {
public:
    /// `summary` is the first line of --help.
    explicit Flags(std::string summary) : summary_(std::move(summary)) {}

    /// Declares a flag with its default value and help text.
    void add(const std::string& name, const std::string& default_value, const std::string& help);

    /// Parses argv. On --help prints the usage and exits with 0; on an
    /// unknown flag or a missing value prints the problem and exits with 2.
    void parse(int argc, char** argv);

    std::string get(const std::string& name) const;
    int get_int(const std::string& name) const;
    double get_double(const std::string& name) const;

    /// A whole number of at least `minimum`.
    std::size_t get_count(const std::string& name, std::size_t minimum = 0) const;

    /// A finite number in [low, high].
    double get_double_in(const std::string& name, double low, double high) const;

    /// A 64-bit unsigned number, such as a seed.
    std::uint64_t get_uint64(const std::string& name) const;

    /// One of `choices`.
    std::string get_choice(const std::string& name, const std::vector<std::string>& choices) const;

    /// Prints "--name: invalid value 'value' (why); see --help" and exits with 2.
    [[noreturn]] void fail(const std::string& name, const std::string& why) const;

    /// The --help text.
    std::string usage(const std::string& program) const;

private:
    struct Flag {
        std::string value;
        std::string default_value;
        std::string help;
    };

    std::string summary_;
    std::vector<std::string> order_;
    std::map<std::string, Flag> flags_;
};

}  // namespace xgrad::examples
