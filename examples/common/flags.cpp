#include "flags.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "xgrad/error.hpp"

namespace xgrad::examples {

void Flags::add(const std::string& name, const std::string& default_value, const std::string& help) {
    order_.push_back(name);
    flags_[name] = Flag{default_value, default_value, help};
}

std::string Flags::usage(const std::string& program) const {
    std::string text = summary_ + "\n\nUsage: " + program + " [flags]\n\nFlags:\n";
    for (const std::string& name : order_) {
        const Flag& flag = flags_.at(name);
        text += "  --" + name + "\n      " + flag.help;
        text += flag.default_value.empty() ? " (default: empty)\n" : " (default: " + flag.default_value + ")\n";
    }
    return text + "  --help\n      Print this help and exit.\n";
}

void Flags::parse(int argc, char** argv) {
    const std::string program = argc > 0 ? argv[0] : "example";
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::fputs(usage(program).c_str(), stdout);
            std::exit(0);
        }
        if (arg.rfind("--", 0) != 0) {
            std::fprintf(stderr, "%s: unexpected argument '%s'; see --help\n", program.c_str(), arg.c_str());
            std::exit(2);
        }
        arg = arg.substr(2);
        std::string value;
        const std::size_t equals = arg.find('=');
        const bool inline_value = equals != std::string::npos;
        if (inline_value) {
            value = arg.substr(equals + 1);
            arg = arg.substr(0, equals);
        }
        auto found = flags_.find(arg);
        if (found == flags_.end()) {
            std::fprintf(stderr, "%s: unknown flag --%s; see --help\n", program.c_str(), arg.c_str());
            std::exit(2);
        }
        if (!inline_value) {
            if (i + 1 == argc) {
                std::fprintf(stderr, "%s: --%s needs a value; see --help\n", program.c_str(), arg.c_str());
                std::exit(2);
            }
            value = argv[++i];
        }
        found->second.value = value;
    }
}

std::string Flags::get(const std::string& name) const { return flags_.at(name).value; }

void Flags::fail(const std::string& name, const std::string& why) const {
    std::fprintf(stderr, "--%s: invalid value '%s' (%s); see --help\n", name.c_str(), get(name).c_str(),
                 why.c_str());
    std::exit(2);
}

std::size_t Flags::get_count(const std::string& name, std::size_t minimum) const {
    const std::string value = get(name);
    if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) {
        fail(name, "expected a whole number");
    }
    try {
        const auto result = static_cast<std::size_t>(std::stoull(value));
        if (result >= minimum) {
            return result;
        }
    } catch (const std::exception&) {
        fail(name, "too large");
    }
    fail(name, "must be at least " + std::to_string(minimum));
}

double Flags::get_double_in(const std::string& name, double low, double high) const {
    const double value = get_double(name);
    if (!(value >= low && value <= high)) {
        fail(name, "must be a number from " + xgrad::format_number(low) + " to " + xgrad::format_number(high));
    }
    return value;
}

std::uint64_t Flags::get_uint64(const std::string& name) const {
    return static_cast<std::uint64_t>(get_count(name));
}

std::string Flags::get_choice(const std::string& name, const std::vector<std::string>& choices) const {
    const std::string value = get(name);
    std::string listed;
    for (const std::string& choice : choices) {
        if (value == choice) {
            return value;
        }
        listed += (listed.empty() ? "" : ", ") + choice;
    }
    fail(name, "expected one of " + listed);
}

int Flags::get_int(const std::string& name) const {
    const std::string value = get(name);
    try {
        std::size_t used = 0;
        const int result = std::stoi(value, &used);
        if (used == value.size()) {
            return result;
        }
    } catch (const std::exception&) {
    }
    std::fprintf(stderr, "--%s: invalid integer '%s'\n", name.c_str(), value.c_str());
    std::exit(2);
}

double Flags::get_double(const std::string& name) const {
    const std::string value = get(name);
    try {
        std::size_t used = 0;
        const double result = std::stod(value, &used);
        if (used == value.size()) {
            return result;
        }
    } catch (const std::exception&) {
    }
    std::fprintf(stderr, "--%s: invalid number '%s'\n", name.c_str(), value.c_str());
    std::exit(2);
}

}  // namespace xgrad::examples
