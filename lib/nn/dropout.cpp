#include "xgrad/nn/dropout.hpp"

#include "autograd/tape.hpp"
#include "xgrad/op.hpp"
#include "xgrad/ops/binary.hpp"

namespace xgrad::nn {

Dropout::Dropout(double p) : Dropout(p, default_generator()) {}

Dropout::Dropout(double p, Generator& generator) : p_(p), generator_(generator.next_bits()) {
    if (!(p >= 0.0 && p <= 1.0)) {
        throw value_error("Dropout: p must be in [0, 1], got " + std::to_string(p));
    }
}

Tensor Dropout::forward(const Tensor& x) {
    check_defined("Dropout", x);
    if (!is_training() || p_ == 0.0) {
        return x;
    }
    // The mask is drawn here, outside any op, so a graph would hold this one
    // mask as a constant and apply it at every replay.
    if (detail::is_capturing()) {
        throw not_implemented("Dropout: capturing a graph in training mode would freeze one "
                              "dropout mask for every replay; capture in eval mode, or train "
                              "this model in eager mode");
    }
    // The mask is a constant of the recorded mul: kept elements carry the
    // scale 1 / (1 - p), dropped ones 0, so backward scales the same way.
    detail::Array mask = detail::Array::uninitialized(x.dtype(), x.shape());
    detail::visit_floating(x.dtype(), "Dropout", [&](auto zero) {
        using T = decltype(zero);
        const T scale = p_ < 1.0 ? static_cast<T>(1.0 / (1.0 - p_)) : T(0);
        for (T& value : mask.get<T>()) {
            value = generator_.uniform() >= p_ ? scale : T(0);
        }
    });
    return x * Tensor(std::move(mask));
}

std::string Dropout::extra_repr() const { return "p=" + std::to_string(p_); }

}  // namespace xgrad::nn
