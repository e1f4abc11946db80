#include "xgrad/optim/optimizer.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <ostream>
#include <set>
#include <string_view>

#include "xgrad/autograd.hpp"

namespace xgrad::optim {

namespace detail {

std::string format_number(double value) { return xgrad::format_number(value); }

void check_argument(const std::string& context, const std::string& name, double value, bool valid,
                    const char* requirement) {
    if (!valid) {
        throw value_error(context + ": " + name + " must be " + requirement + ", got " +
                          format_number(value));
    }
}

}  // namespace detail

namespace {

// Prefixes of the state_dict() names.
constexpr std::string_view kGroupPrefix = "param_groups.";
constexpr std::string_view kStatePrefix = "state.";

bool is_valid_rate(double value) {
    return std::isfinite(value) && value >= 0.0;
}

// Parses the decimal index in `name` starting at `begin` and ending before
// the next '.', accepting only the form that std::to_string writes, so that
// every state entry has exactly one name.
std::optional<std::size_t> parse_index(const std::string& name, std::size_t begin,
                                       std::size_t& end) {
    end = name.find('.', begin);
    if (end == std::string::npos || end == begin) {
        return std::nullopt;
    }
    std::size_t index = 0;
    const char* first = name.data() + begin;
    const char* last = name.data() + end;
    const auto result = std::from_chars(first, last, index);
    if (result.ec != std::errc() || result.ptr != last ||
        std::to_string(index) != name.substr(begin, end - begin)) {
        return std::nullopt;
    }
    return index;
}

std::string describe(const Tensor& tensor) {
    return "shape " + shape_string(tensor.shape()) + " and dtype " + dtype_name(tensor.dtype());
}

std::string join_names(const std::vector<std::string>& names) {
    std::string joined;
    for (const std::string& name : names) {
        joined += joined.empty() ? name : ", " + name;
    }
    return joined.empty() ? "no buffers" : joined;
}

}  // namespace

Optimizer::Optimizer(std::string name, std::vector<ParamGroup> groups, double default_lr,
                     double default_weight_decay)
    : name_(std::move(name)), default_lr_(default_lr), default_weight_decay_(default_weight_decay) {
    for (ParamGroup& group : groups) {
        add_param_group(std::move(group));
    }
    if (states_.empty()) {
        throw value_error(name_ + ": the parameter list is empty; pass at least one parameter");
    }
}

void Optimizer::add_param_group(ParamGroup group) {
    const std::string group_name = "param group " + std::to_string(groups_.size());
    const double lr = group.lr.value_or(default_lr_);
    const double weight_decay = group.weight_decay.value_or(default_weight_decay_);
    detail::check_argument(name_, "lr of " + group_name, lr, is_valid_rate(lr), "finite and >= 0");
    detail::check_argument(name_, "weight_decay of " + group_name, weight_decay,
                           is_valid_rate(weight_decay), "finite and >= 0");

    // Index of every parameter so far, by tensor identity, to find repeats.
    std::map<const void*, std::size_t> indices;
    for (const Tensor& param : parameters()) {
        indices.emplace(param.id(), indices.size());
    }
    for (const Tensor& param : group.params) {
        const std::size_t index = indices.size();
        const std::string where =
            name_ + ": parameter " + std::to_string(index) + " (" + group_name + ")";
        if (!param.defined()) {
            throw value_error(where + " is an undefined tensor");
        }
        if (!is_floating(param.dtype())) {
            throw value_error(where + " has dtype " + dtype_name(param.dtype()) +
                              "; optimizers update float32 and float64 tensors only");
        }
        if (!param.requires_grad()) {
            throw value_error(where +
                              " does not require grad; call requires_grad_() on it, "
                              "or leave it out if it should stay fixed");
        }
        if (!param.is_leaf()) {
            throw value_error(where +
                              " is not a leaf tensor (a recorded op produced it); "
                              "optimize the leaf it was computed from");
        }
        const auto [previous, inserted] = indices.emplace(param.id(), index);
        if (!inserted) {
            throw value_error(where + " is the same tensor as parameter " +
                              std::to_string(previous->second) +
                              "; each parameter may appear only once across all groups");
        }
    }

    states_.resize(states_.size() + group.params.size());
    groups_.push_back(Group{std::move(group.params), lr, weight_decay});
}

std::vector<Tensor> Optimizer::parameters() const {
    std::vector<Tensor> params;
    for (const Group& group : groups_) {
        params.insert(params.end(), group.params.begin(), group.params.end());
    }
    return params;
}

void Optimizer::zero_grad() {
    for (Group& group : groups_) {
        for (Tensor& param : group.params) {
            param.zero_grad();
        }
    }
}

void Optimizer::check_before_step() const {
    // param_groups() hands out the groups for changes to lr and weight_decay,
    // but a parameter added or removed there would have no state slot.
    std::size_t param_count = 0;
    for (const Group& group : groups_) {
        param_count += group.params.size();
    }
    if (param_count != states_.size()) {
        throw value_error(
            name_ + "::step: the param groups contain " + std::to_string(param_count) +
            " parameters, but the optimizer keeps state for " + std::to_string(states_.size()) +
            "; add parameters with add_param_group(), not through param_groups()");
    }

    std::size_t index = 0;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        const Group& group = groups_[g];
        // The messages are built only on failure, so that a valid step allocates nothing.
        if (!is_valid_rate(group.lr) || !is_valid_rate(group.weight_decay)) {
            const std::string group_name = " of param group " + std::to_string(g);
            detail::check_argument(name_, "lr" + group_name, group.lr, is_valid_rate(group.lr),
                                   "finite and >= 0");
            detail::check_argument(name_, "weight_decay" + group_name, group.weight_decay,
                                   is_valid_rate(group.weight_decay), "finite and >= 0");
        }

        for (const Tensor& param : group.params) {
            const ParamState& state = states_[index];
            const Tensor grad = param.grad();
            if (grad.defined() &&
                (grad.shape() != param.shape() || grad.dtype() != param.dtype())) {
                throw shape_error(name_ + "::step: the gradient of parameter " +
                                  std::to_string(index) + " has " + describe(grad) +
                                  ", but the parameter has " + describe(param));
            }
            for (const Tensor& buffer : state.buffers) {
                if (buffer.shape() != param.shape() || buffer.dtype() != param.dtype()) {
                    throw shape_error(name_ + "::step: parameter " + std::to_string(index) +
                                      " has " + describe(param) + ", but its state has " +
                                      describe(buffer) +
                                      "; the parameter's values were replaced after its "
                                      "state was created");
                }
            }
            ++index;
        }
    }
}

void Optimizer::step() {
    check_before_step();

    NoGradGuard no_grad;
    std::size_t index = 0;
    for (Group& group : groups_) {
        for (Tensor& param : group.params) {
            ParamState& state = states_[index++];
            const Tensor grad = param.grad();
            if (!grad.defined()) {
                continue;
            }
            if (!state.initialized) {
                // The buffers are created here, once, and later steps update them in place.
                const std::size_t count = buffer_names().size();
                state.buffers.clear();
                for (std::size_t k = 0; k < count; ++k) {
                    state.buffers.emplace_back(xgrad::detail::Array::full(
                        param.dtype(), param.shape(), initial_buffer_value(k)));
                }
                state.step = 0;
                state.initialized = true;
            }
            ++state.step;
            update(group, param, grad, state);
        }
    }
}

double Optimizer::initial_buffer_value(std::size_t /*buffer*/) const {
    return 0.0;
}

StateDict Optimizer::state_dict() const {
    StateDict entries;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        const std::string prefix = std::string(kGroupPrefix) + std::to_string(g) + ".";
        entries.emplace_back(prefix + "lr", scalar(groups_[g].lr, Dtype::float64));
        entries.emplace_back(prefix + "weight_decay",
                             scalar(groups_[g].weight_decay, Dtype::float64));
    }

    const std::vector<std::string> names = buffer_names();
    for (std::size_t i = 0; i < states_.size(); ++i) {
        const ParamState& state = states_[i];
        if (!state.initialized) {
            continue;
        }
        const std::string prefix = std::string(kStatePrefix) + std::to_string(i) + ".";
        entries.emplace_back(prefix + "step", Tensor(xt::xarray<std::int64_t>(state.step)));
        for (std::size_t k = 0; k < names.size(); ++k) {
            entries.emplace_back(prefix + names[k], state.buffers[k].clone());
        }
    }
    return entries;
}

namespace {

// The entries of a state dict sorted by what they set, with the problems
// found so far.
struct SortedEntries {
    // Slots 2g and 2g + 1 are group g's lr and weight_decay.
    std::vector<const Tensor*> groups;
    // Per parameter: the step count, then one slot per buffer.
    std::vector<std::vector<const Tensor*>> states;
    std::vector<std::string> problems;
};

// Sorts the entries of `state` into slots, listing every name that is
// duplicate or unexpected for an optimizer with `group_count` groups,
// `param_count` parameters and the buffers `names`.
SortedEntries sort_entries(const StateDict& state, const std::string& optimizer,
                           std::size_t group_count, std::size_t param_count,
                           const std::vector<std::string>& names) {
    SortedEntries sorted{
        .groups = std::vector<const Tensor*>(2 * group_count, nullptr),
        .states = std::vector<std::vector<const Tensor*>>(
            param_count, std::vector<const Tensor*>(1 + names.size(), nullptr)),
        .problems = {},
    };
    std::vector<std::string>& problems = sorted.problems;

    std::set<std::string> seen;
    for (const auto& [name, tensor] : state) {
        if (!seen.insert(name).second) {
            problems.push_back("duplicate entry '" + name + "'");
            continue;
        }
        const Tensor** slot = nullptr;
        std::size_t end = 0;
        if (name.starts_with(kGroupPrefix)) {
            const auto g = parse_index(name, kGroupPrefix.size(), end);
            const std::string field = g ? name.substr(end + 1) : "";
            if (g && *g < group_count && field == "lr") {
                slot = &sorted.groups[2 * *g];
            } else if (g && *g < group_count && field == "weight_decay") {
                slot = &sorted.groups[2 * *g + 1];
            }
            if (slot == nullptr) {
                problems.push_back("unexpected entry '" + name + "' (the optimizer has " +
                                   std::to_string(group_count) +
                                   " param groups, each with lr and weight_decay)");
                continue;
            }
        } else if (name.starts_with(kStatePrefix)) {
            const auto i = parse_index(name, kStatePrefix.size(), end);
            const std::string field = i ? name.substr(end + 1) : "";
            if (i && *i < param_count) {
                if (field == "step") {
                    slot = &sorted.states[*i][0];
                }
                for (std::size_t k = 0; k < names.size(); ++k) {
                    if (field == names[k]) {
                        slot = &sorted.states[*i][1 + k];
                    }
                }
            }
            if (slot == nullptr) {
                problems.push_back("unexpected entry '" + name + "' (the optimizer has " +
                                   std::to_string(param_count) + " parameters, and " + optimizer +
                                   " with these options keeps step and " + join_names(names) +
                                   " for each)");
                continue;
            }
        } else {
            problems.push_back("unexpected entry '" + name + "'");
            continue;
        }

        if (!tensor.defined()) {
            problems.push_back("'" + name + "' is an undefined tensor");
            continue;
        }
        *slot = &tensor;
    }
    return sorted;
}

// Adds a problem and returns false unless `entry` is present with this shape and dtype.
bool check_entry(std::vector<std::string>& problems, const std::string& name, const Tensor* entry,
                 const Shape& shape, Dtype dtype) {
    if (entry == nullptr) {
        problems.push_back("missing entry '" + name + "'");
        return false;
    }
    if (entry->shape() != shape || entry->dtype() != dtype) {
        problems.push_back("'" + name + "' has " + describe(*entry) + ", expected shape " +
                           shape_string(shape) + " and dtype " + dtype_name(dtype));
        return false;
    }
    return true;
}

// Checks that every group has valid hyperparameters and that every
// parameter has either no state entries or all of them, each of the
// expected shape and dtype.
void check_entries(SortedEntries& sorted, const std::vector<Tensor>& params,
                   const std::vector<std::string>& names) {
    std::vector<std::string>& problems = sorted.problems;

    const char* fields[] = {"lr", "weight_decay"};
    for (std::size_t slot = 0; slot < sorted.groups.size(); ++slot) {
        const std::string name =
            std::string(kGroupPrefix) + std::to_string(slot / 2) + "." + fields[slot % 2];
        const Tensor* entry = sorted.groups[slot];
        if (check_entry(problems, name, entry, Shape{}, Dtype::float64) &&
            !is_valid_rate(entry->item())) {
            problems.push_back("'" + name + "' is " + detail::format_number(entry->item()) +
                               ", expected a finite value >= 0");
        }
    }

    for (std::size_t i = 0; i < params.size(); ++i) {
        const std::vector<const Tensor*>& entries = sorted.states[i];
        const bool any_present =
            std::any_of(entries.begin(), entries.end(), [](const Tensor* e) { return e; });
        if (!any_present) {
            continue;
        }
        const std::string prefix = std::string(kStatePrefix) + std::to_string(i) + ".";
        if (check_entry(problems, prefix + "step", entries[0], Shape{}, Dtype::int64) &&
            entries[0]->values<std::int64_t>()() < 0) {
            problems.push_back("'" + prefix + "step' is " +
                               std::to_string(entries[0]->values<std::int64_t>()()) +
                               ", expected a count >= 0");
        }
        for (std::size_t k = 0; k < names.size(); ++k) {
            check_entry(problems, prefix + names[k], entries[1 + k], params[i].shape(),
                        params[i].dtype());
        }
    }
}

}  // namespace

void Optimizer::load_state_dict(const StateDict& state) {
    const std::vector<std::string> names = buffer_names();
    const std::vector<Tensor> params = parameters();
    SortedEntries sorted = sort_entries(state, name_, groups_.size(), params.size(), names);
    check_entries(sorted, params, names);
    if (!sorted.problems.empty()) {
        const std::size_t count = sorted.problems.size();
        std::string message = name_ + "::load_state_dict: " + std::to_string(count) +
                              (count == 1 ? " problem" : " problems") + ", nothing was loaded:";
        for (const std::string& problem : sorted.problems) {
            message += "\n  " + problem;
        }
        throw value_error(message);
    }

    // The new state is built aside and swapped in, so that an allocation
    // failure while copying leaves the optimizer as it was.
    std::vector<ParamState> loaded(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
        const std::vector<const Tensor*>& entries = sorted.states[i];
        if (entries[0] == nullptr) {
            continue;
        }
        loaded[i].initialized = true;
        loaded[i].step = entries[0]->values<std::int64_t>()();
        for (std::size_t k = 0; k < names.size(); ++k) {
            loaded[i].buffers.push_back(entries[1 + k]->clone());
        }
    }
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        groups_[g].lr = sorted.groups[2 * g]->item();
        groups_[g].weight_decay = sorted.groups[2 * g + 1]->item();
    }
    states_ = std::move(loaded);
}

std::ostream& operator<<(std::ostream& out, const Optimizer& optimizer) {
    out << optimizer.name_ << '(';
    optimizer.print_options(out);
    return out << ')';
}

void Optimizer::mask_state(const Tensor& param, const Tensor& mask) {
    std::size_t index = 0;
    for (const Group& group : groups_) {
        for (const Tensor& candidate : group.params) {
            if (candidate.id() == param.id()) {
                if (!mask.defined() || mask.shape() != param.shape() || mask.dtype() != param.dtype()) {
                    throw shape_error(name_ + "::mask_state: the mask must have the parameter's shape " +
                                      shape_string(param.shape()) + " and dtype " +
                                      dtype_name(param.dtype()));
                }
                ParamState& state = states_[index];
                if (!state.initialized) {
                    return;
                }
                NoGradGuard no_grad;
                xgrad::detail::visit_floating(param.dtype(), "mask_state", [&](auto zero) {
                    using T = decltype(zero);
                    const auto& keep = mask.values<T>();
                    for (Tensor& buffer : state.buffers) {
                        T* values = buffer.mutable_values<T>().data();
                        for (std::size_t i = 0; i < keep.size(); ++i) {
                            if (keep.flat(i) == T(0)) {
                                values[i] = T(0);
                            }
                        }
                    }
                });
                return;
            }
            ++index;
        }
    }
    throw value_error(name_ + "::mask_state: the tensor is not a parameter of this optimizer");
}

}  // namespace xgrad::optim
