#include "xgrad/checkpoint.hpp"

#include <algorithm>
#include <cstring>
#include <string>

namespace xgrad {

namespace {

constexpr const char* kModelPrefix = "model.";
constexpr const char* kOptimizerPrefix = "optimizer.";
constexpr const char* kExtraPrefix = "extra.";

bool starts_with(const std::string& text, const char* prefix) {
    return text.rfind(prefix, 0) == 0;
}

[[noreturn]] void throw_mismatch(const std::filesystem::path& path, const std::string& what,
                                 const std::vector<std::string>& problems) {
    std::string message = "'" + path.string() + "' does not match the " + what + ":";
    for (const std::string& problem : problems) {
        message += "\n  " + problem;
    }
    throw value_error(message);
}

}  // namespace

void save_model(const nn::Module& model, const std::filesystem::path& path) {
    io::save_npz(path, model.state_dict());
}

void load_model(nn::Module& model, const std::filesystem::path& path) {
    const io::NamedTensors state = io::load_npz(path);
    std::vector<std::string> problems = model.check_state_dict(state);
    if (!problems.empty()) {
        const bool checkpoint = std::any_of(state.begin(), state.end(), [](const auto& entry) {
            return starts_with(entry.first, kModelPrefix);
        });
        if (checkpoint) {
            problems.push_back("(this looks like a training checkpoint; read it with load_checkpoint())");
        }
        throw_mismatch(path, "model " + model.type_name(), problems);
    }
    model.load_state_dict(state);
}

void save_checkpoint(const std::filesystem::path& path, const nn::Module& model,
                     const optim::Optimizer& optimizer, const io::NamedTensors& extra) {
    io::NamedTensors entries;
    for (const auto& [name, tensor] : model.state_dict()) {
        entries.emplace_back(kModelPrefix + name, tensor);
    }
    for (const auto& [name, tensor] : optimizer.state_dict()) {
        entries.emplace_back(kOptimizerPrefix + name, tensor);
    }
    for (const auto& [name, tensor] : extra) {
        entries.emplace_back(kExtraPrefix + name, tensor);
    }
    io::save_npz(path, entries);
}

io::NamedTensors load_checkpoint(const std::filesystem::path& path, nn::Module& model,
                                 optim::Optimizer& optimizer) {
    io::NamedTensors model_state;
    optim::StateDict optimizer_state;
    io::NamedTensors extra;
    std::vector<std::string> unknown;
    for (auto& [name, tensor] : io::load_npz(path)) {
        if (starts_with(name, kModelPrefix)) {
            model_state.emplace_back(name.substr(std::strlen(kModelPrefix)), tensor);
        } else if (starts_with(name, kOptimizerPrefix)) {
            optimizer_state.emplace_back(name.substr(std::strlen(kOptimizerPrefix)), tensor);
        } else if (starts_with(name, kExtraPrefix)) {
            extra.emplace_back(name.substr(std::strlen(kExtraPrefix)), tensor);
        } else {
            unknown.push_back("unexpected '" + name + "' (not under model., optimizer. or extra.)");
        }
    }
    std::vector<std::string> problems = model.check_state_dict(model_state);
    problems.insert(problems.end(), unknown.begin(), unknown.end());
    if (!problems.empty()) {
        throw_mismatch(path, "model " + model.type_name(), problems);
    }

    // The optimizer checks everything before it changes anything, and the
    // model state was checked above, so after this call nothing can fail.
    try {
        optimizer.load_state_dict(optimizer_state);
    } catch (const value_error& error) {
        throw value_error("'" + path.string() + "' does not match the optimizer: " + error.what());
    }
    model.load_state_dict(model_state);
    return extra;
}

Tensor generator_state(const Generator& generator) {
    xt::xarray<std::int64_t> words(Shape{4});
    for (std::size_t i = 0; i < 4; ++i) {
        std::memcpy(&words(i), &generator.state()[i], sizeof(std::uint64_t));
    }
    return Tensor(std::move(words));
}

void set_generator_state(Generator& generator, const Tensor& state) {
    if (!state.defined() || state.dtype() != Dtype::int64 || state.shape() != Shape{4}) {
        throw value_error("set_generator_state: expected an int64 tensor of shape (4)");
    }
    Generator::State words{};
    for (std::size_t i = 0; i < 4; ++i) {
        std::memcpy(&words[i], &state.values<std::int64_t>()(i), sizeof(std::uint64_t));
    }
    generator.set_state(words);
}

}  // namespace xgrad
