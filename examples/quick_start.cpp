// The README's first program: record a small computation and ask the tape for
// its gradient.
//
// Run:    build/examples/quick_start
// Prints: the loss and d loss / d w, and exits with 1 if the gradient differs
//         from the closed form x * (1 - tanh(w * x)^2).

#include <cmath>
#include <cstdio>

#include <xgrad/xgrad.hpp>

int main() {
    xgrad::Tensor w(xt::xarray<double>{0.5, -1.0});
    w.requires_grad_(true);
    const xgrad::Tensor x(xt::xarray<double>{2.0, 3.0});

    const xgrad::Tensor loss = xgrad::sum(xgrad::tanh(w * x));
    loss.backward();  // w.grad() now contains d loss / d w

    const xgrad::Tensor dw = w.grad();
    const auto& grad = dw.values<double>();
    std::printf("loss = %.6f, d loss / d w = [%.6f, %.6f]\n", loss.item(), grad(0), grad(1));

    // Check against the derivative written out by hand.
    bool right = true;
    for (std::size_t i = 0; i < 2; ++i) {
        const double wi = w.values<double>()(i);
        const double xi = x.values<double>()(i);
        const double expected = xi * (1.0 - std::tanh(wi * xi) * std::tanh(wi * xi));
        right = right && std::abs(grad(i) - expected) < 1e-12;
    }
    std::printf(right ? "gradient matches the closed form\n" : "FAILED: gradient is wrong\n");
    return right ? 0 : 1;
}
