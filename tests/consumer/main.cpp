// Trains y = 3x - 1 by gradient descent through the installed xgrad package
// and exits with 0 when the learned weights are right.

#include <cmath>
#include <cstdio>

#include <xgrad/xgrad.hpp>

int main() {
    const xgrad::Tensor x = xgrad::reshape(xgrad::Tensor(xt::xarray<double>{-1.0, 0.0, 1.0, 2.0}), {4, 1});
    const xgrad::Tensor y = x * 3.0 - 1.0;
    xgrad::Tensor w = xgrad::zeros({1, 1}, xgrad::Dtype::float64);
    xgrad::Tensor b = xgrad::zeros({1}, xgrad::Dtype::float64);
    w.requires_grad_(true);
    b.requires_grad_(true);

    for (int step = 0; step < 500; ++step) {
        xgrad::mse_loss(xgrad::matmul(x, w) + b, y).backward();
        xgrad::NoGradGuard no_grad;
        w.mutable_values<double>() -= 0.1 * w.grad().values<double>();
        b.mutable_values<double>() -= 0.1 * b.grad().values<double>();
        w.zero_grad();
        b.zero_grad();
    }
    std::printf("w = %.6f, b = %.6f\n", w.item(), b.item());
    return std::abs(w.item() - 3.0) < 1e-6 && std::abs(b.item() + 1.0) < 1e-6 ? 0 : 1;
}
