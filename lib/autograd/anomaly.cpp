#include "autograd/anomaly.hpp"

#include <cmath>

#include "xgrad/autograd.hpp"

namespace xgrad::detail {

namespace {

thread_local bool enabled = false;
thread_local std::uint64_t op_count = 0;

}  // namespace

bool anomaly_enabled() { return enabled; }

std::uint64_t next_anomaly_op() { return ++op_count; }

bool has_non_finite(const Array& values) {
    if (values.empty() || !is_floating(values.dtype())) {
        return false;
    }
    return visit_floating(values.dtype(), "anomaly detection", [&](auto zero) {
        using T = decltype(zero);
        for (T value : values.get<T>()) {
            if (!std::isfinite(value)) {
                return true;
            }
        }
        return false;
    });
}

std::string shapes_string(std::span<const Array* const> inputs) {
    std::string text;
    for (const Array* input : inputs) {
        text += (text.empty() ? "" : ", ") + shape_string(input->shape());
    }
    return text.empty() ? "none" : text;
}

std::string non_finite_input_note(std::span<const Array* const> inputs) {
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (has_non_finite(*inputs[i])) {
            return "; input " + std::to_string(i) +
                   " already contains NaN or infinity, so the fault lies upstream: in data, a "
                   "parameter or a tensor made while detection was off";
        }
    }
    return "";
}

}  // namespace xgrad::detail

namespace xgrad {

bool is_anomaly_detection_enabled() { return detail::enabled; }

void set_anomaly_detection(bool enabled) {
    if (enabled && !detail::enabled) {
        detail::op_count = 0;
    }
    detail::enabled = enabled;
}

}  // namespace xgrad
