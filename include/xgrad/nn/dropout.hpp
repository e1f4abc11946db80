#pragma once

#include <string>

#include "xgrad/nn/module.hpp"
#include "xgrad/random.hpp"

namespace xgrad::nn {

/// Inverted dropout (Srivastava et al., 2014). In training mode each element
/// is zeroed with probability p and the survivors are scaled by 1 / (1 - p),
/// so the expected output equals the input. In eval mode it is the identity.
/// p = 1 zeroes everything. The gradient flows through the kept elements
/// with the same scale.
class Dropout : public Module {
public:
    /// Draws its masks from a generator seeded from `generator` (or from this
    /// thread's default generator), so a seeded program gets the same masks.
    explicit Dropout(double p = 0.5);
    Dropout(double p, Generator& generator);

    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;

    double p() const { return p_; }

private:
    double p_;
    // NOTE: the mask generator's state is not part of state_dict(), so a run
    // resumed from a checkpoint draws different masks than an uninterrupted one.
    Generator generator_;
};

}  // namespace xgrad::nn
