#pragma once

// Helpers of the xgrad::distributed suite.
//
// NOTE: A failed REQUIRE ends a test case on one rank only, and the other
// ranks then wait in their next collective until ctest's timeout. Test cases
// here use CHECK for everything that can differ between ranks.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <memory>

#include "testing.hpp"
#include "xgrad/distributed.hpp"
#include "xgrad/xgrad.hpp"

namespace xgrad::testing {

/// The context over every rank, created by the runner's main().
const distributed::Context& world_context();

/// Builds a float64 tanh MLP 5-8-3, initialised from `seed`.
inline std::shared_ptr<nn::Sequential> small_mlp(std::uint64_t seed) {
    Generator generator(seed);
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Linear>(nn::LinearOptions{.in_features = 5, .out_features = 8,
                                                       .dtype = Dtype::float64},
                                     generator),
        std::make_shared<nn::Tanh>(),
        std::make_shared<nn::Linear>(nn::LinearOptions{.in_features = 8, .out_features = 3,
                                                       .dtype = Dtype::float64},
                                     generator)});
}

/// Draws `n` examples of 5 float64 features with labels in 0 .. 2 from `seed`.
inline data::TensorDataset small_dataset(std::size_t n, std::uint64_t seed = 3) {
    Generator generator(seed);
    Tensor inputs = randn({n, 5}, generator, Dtype::float64);
    xt::xarray<std::int64_t> labels(Shape{n});
    for (std::size_t i = 0; i < n; ++i) {
        labels(i) = static_cast<std::int64_t>(generator.below(3));
    }
    return data::TensorDataset(inputs, Tensor(labels));
}

/// Returns the maximum absolute difference between the parameters of two
/// models of the same structure.
inline double max_parameter_difference(const nn::Module& a, const nn::Module& b) {
    const auto pa = a.parameters();
    const auto pb = b.parameters();
    double largest = 0.0;
    for (std::size_t i = 0; i < pa.size(); ++i) {
        const auto& va = pa[i].values<double>();
        const auto& vb = pb[i].values<double>();
        for (std::size_t k = 0; k < va.size(); ++k) {
            largest = std::max(largest, std::abs(va.flat(k) - vb.flat(k)));
        }
    }
    return largest;
}

}  // namespace xgrad::testing
