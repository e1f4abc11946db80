#pragma once

// Helpers shared by the doctest suites.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>

#include "xgrad/xgrad.hpp"

namespace xgrad::testing {

/// A float64 tensor, uniform in [low, high), that requires grad.
inline Tensor random_input(const Shape& shape, std::uint64_t seed, double low = -2.0,
                           double high = 2.0) {
    Generator generator(seed);
    Tensor x = uniform(shape, low, high, generator, Dtype::float64);
    x.requires_grad_(true);
    return x;
}

/// Like random_input, with every element at least `margin` away from zero,
/// for functions with a kink or a pole at zero.
inline Tensor random_away_from_zero(const Shape& shape, std::uint64_t seed, double margin = 0.1,
                                    double high = 2.0) {
    Generator generator(seed);
    Tensor x = uniform(shape, margin, high, generator, Dtype::float64);
    {
        NoGradGuard no_grad;
        for (double& value : x.mutable_values<double>()) {
            if (generator.uniform() < 0.5) {
                value = -value;
            }
        }
    }
    x.requires_grad_(true);
    return x;
}

/// Values of a float64 tensor as an xarray, for CHECK comparisons.
inline const xt::xarray<double>& values(const Tensor& x) { return x.values<double>(); }

inline bool all_close(const xt::xarray<double>& a, const xt::xarray<double>& b,
                      double tolerance = 1e-12) {
    if (a.shape() != b.shape()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!(std::abs(a.flat(i) - b.flat(i)) <= tolerance)) {
            return false;
        }
    }
    return true;
}

}  // namespace xgrad::testing

/// Runs gradcheck and fails the test case with its message when it fails.
#define CHECK_GRADCHECK(function, ...)                                          \
    do {                                                                        \
        const auto gradcheck_result = ::xgrad::gradcheck(function, __VA_ARGS__); \
        INFO(gradcheck_result.message);                                         \
        CHECK(gradcheck_result.passed);                                         \
    } while (false)
