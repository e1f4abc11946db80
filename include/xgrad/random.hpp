#pragma once

// Seeded random numbers for initialisation, dropout, shuffling and tests.
// The same seed gives the same sequence on every platform, because the
// generator (xoshiro256**, seeded through splitmix64) and the conversions
// below are written out here rather than taken from <random>, whose
// distributions differ between standard libraries.

#include <array>
#include <cstdint>

#include "xgrad/tensor.hpp"

namespace xgrad {

class Generator {
public:
    using State = std::array<std::uint64_t, 4>;

    explicit Generator(std::uint64_t seed = 0) { reseed(seed); }

    void reseed(std::uint64_t seed);

    /// The full state, for checkpoints; set_state() resumes the sequence.
    const State& state() const { return state_; }
    void set_state(const State& state);

    /// 64 uniformly distributed bits.
    std::uint64_t next_bits();

    /// A double uniform in [0, 1), with 53 random bits.
    double uniform();

    /// A double uniform in [low, high).
    double uniform(double low, double high) { return low + (high - low) * uniform(); }

    /// A standard normal sample (Box-Muller; two uniforms per sample).
    double normal();

    /// An integer uniform in [0, n), without modulo bias. n must be positive.
    std::uint64_t below(std::uint64_t n);

private:
    State state_{};
};

/// This thread's default generator, used by layers and dropout when no
/// generator is passed. Each thread's starts from seed 0.
Generator& default_generator();

/// Reseeds this thread's default generator.
void manual_seed(std::uint64_t seed);

/// Values uniform in [low, high).
Tensor uniform(const Shape& shape, double low, double high, Generator& generator,
               Dtype dtype = Dtype::float32);

/// Values from the normal distribution with the given mean and standard deviation.
Tensor normal(const Shape& shape, double mean, double stddev, Generator& generator,
              Dtype dtype = Dtype::float32);

/// Standard normal values.
inline Tensor randn(const Shape& shape, Generator& generator, Dtype dtype = Dtype::float32) {
    return normal(shape, 0.0, 1.0, generator, dtype);
}

}  // namespace xgrad
