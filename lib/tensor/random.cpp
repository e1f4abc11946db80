#include "xgrad/random.hpp"

#include <cmath>
#include <numbers>

namespace xgrad {

namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

std::uint64_t rotate_left(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

template <class Draw>
Tensor fill(const Shape& shape, Dtype dtype, Draw draw) {
    detail::Array values = detail::Array::uninitialized(dtype, shape);
    detail::visit_floating(dtype, "random", [&](auto zero) {
        using T = decltype(zero);
        for (T& value : values.get<T>()) {
            value = static_cast<T>(draw());
        }
    });
    return Tensor(std::move(values));
}

}  // namespace

void Generator::reseed(std::uint64_t seed) {
    for (std::uint64_t& word : state_) {
        word = splitmix64(seed);
    }
}

void Generator::set_state(const State& state) {
    if (state == State{}) {
        throw value_error("Generator::set_state: the all-zero state is invalid for xoshiro256**");
    }
    state_ = state;
}

std::uint64_t Generator::next_bits() {
    const std::uint64_t result = rotate_left(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotate_left(state_[3], 45);
    return result;
}

double Generator::uniform() { return static_cast<double>(next_bits() >> 11) * 0x1.0p-53; }

double Generator::normal() {
    // 1 - uniform() lies in (0, 1], so the logarithm is finite.
    const double radius = std::sqrt(-2.0 * std::log(1.0 - uniform()));
    return radius * std::cos(2.0 * std::numbers::pi * uniform());
}

std::uint64_t Generator::below(std::uint64_t n) {
    if (n == 0) {
        throw value_error("Generator::below: n must be positive");
    }
    // Reject the top partial block of 2^64 so every residue is equally likely.
    const std::uint64_t limit = -n % n;  // (2^64 - n) mod n == 2^64 mod n
    for (;;) {
        const std::uint64_t bits = next_bits();
        if (bits >= limit) {
            return bits % n;
        }
    }
}

Generator& default_generator() {
    thread_local Generator generator(0);
    return generator;
}

void manual_seed(std::uint64_t seed) { default_generator().reseed(seed); }

Tensor uniform(const Shape& shape, double low, double high, Generator& generator, Dtype dtype) {
    if (!(low <= high)) {
        throw value_error("uniform: low (" + std::to_string(low) + ") must not exceed high (" +
                          std::to_string(high) + ")");
    }
    return fill(shape, dtype, [&] { return generator.uniform(low, high); });
}

Tensor normal(const Shape& shape, double mean, double stddev, Generator& generator, Dtype dtype) {
    if (!(stddev >= 0.0)) {
        throw value_error("normal: stddev must be non-negative, got " + std::to_string(stddev));
    }
    return fill(shape, dtype, [&] { return mean + stddev * generator.normal(); });
}

}  // namespace xgrad
