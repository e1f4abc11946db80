#include "flags.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

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
        if (equals != std::string::npos) {
            value = arg.substr(equals + 1);
            arg = arg.substr(0, equals);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            std::fprintf(stderr, "%s: --%s needs a value; see --help\n", program.c_str(), arg.c_str());
            std::exit(2);
        }
        auto found = flags_.find(arg);
        if (found == flags_.end()) {
            std::fprintf(stderr, "%s: unknown flag --%s; see --help\n", program.c_str(), arg.c_str());
            std::exit(2);
        }
        found->second.value = value;
    }
}

std::string Flags::get(const std::string& name) const { return flags_.at(name).value; }

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
