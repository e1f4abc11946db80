// The two-input network that xgrad grew from, trained by plain gradient descent.
//
// What it teaches: recording a forward pass on the tape, calling backward()
// for exact gradients, and the update w <- w - lr * dJ/dw written out by hand.
// docs/tutorial-seed-network.md derives the same gradients on paper.
//
// Run:    build/examples/seed_network
// Prints: "Epoch k, Loss: v" for each epoch of two networks, then the
//         learned weights. It exits with 1 if a network misses its loss
//         target within the epoch limit.
//
// Network 1: y = tanh(w1 x1 + w2 x2 + b), mean squared error.
// Network 2: y = sigmoid(w1 x1 + w2 x2 + w3 + b), where w3 is a weight on a
//            constant input of 1, squared error summed over the examples.
// Both train on (x1, x2) = (1, 0) -> 1 and (0, 1) -> 0, from weights of 0.5
// with learning rate 0.1.

#include <cstdio>
#include <vector>

#include <xgrad/xgrad.hpp>

namespace {

constexpr double kLearningRate = 0.1;
constexpr double kInitialWeight = 0.5;
constexpr double kTargetLoss = 0.01;
constexpr int kMaxEpochs = 10000;

using xgrad::Tensor;

Tensor weight() {
    Tensor w(xt::xarray<double>{kInitialWeight});
    w.requires_grad_(true);
    return w;
}

// One gradient-descent step on every parameter: w <- w - lr * dJ/dw.
void descend(std::vector<Tensor>& parameters) {
    xgrad::NoGradGuard no_grad;
    for (Tensor& w : parameters) {
        w.mutable_values<double>() -= kLearningRate * w.grad().values<double>();
        w.zero_grad();
    }
}

// Trains until the loss falls below kTargetLoss; returns the epochs used, or
// -1 when the limit is reached first.
template <class Loss>
int train(const char* title, std::vector<Tensor>& parameters, Loss compute_loss) {
    std::printf("%s\n", title);
    for (int epoch = 1; epoch <= kMaxEpochs; ++epoch) {
        const Tensor loss = compute_loss();  // forward pass, recorded on the tape
        std::printf("Epoch %d, Loss: %.6f\n", epoch, loss.item());
        if (loss.item() < kTargetLoss) {
            return epoch;
        }
        loss.backward();  // fills w.grad() for every parameter
        descend(parameters);
    }
    return -1;
}

}  // namespace

int main() {
    // The two training examples as a batch: rows are (x1, x2).
    const Tensor x1(xt::xarray<double>{1.0, 0.0});
    const Tensor x2(xt::xarray<double>{0.0, 1.0});
    const Tensor target(xt::xarray<double>{1.0, 0.0});

    Tensor w1 = weight();
    Tensor w2 = weight();
    Tensor b = weight();
    std::vector<Tensor> tanh_parameters = {w1, w2, b};
    const int tanh_epochs = train("y = tanh(w1 x1 + w2 x2 + b), mean squared error", tanh_parameters,
                                  [&] { return xgrad::mse_loss(xgrad::tanh(w1 * x1 + w2 * x2 + b), target); });
    std::printf("Learned: w1 = %.4f, w2 = %.4f, b = %.4f\n\n", w1.item(), w2.item(), b.item());

    Tensor v1 = weight();
    Tensor v2 = weight();
    Tensor v3 = weight();
    Tensor c = weight();
    std::vector<Tensor> sigmoid_parameters = {v1, v2, v3, c};
    const int sigmoid_epochs = train(
        "y = sigmoid(w1 x1 + w2 x2 + w3 + b), squared error", sigmoid_parameters, [&] {
            return xgrad::mse_loss(xgrad::sigmoid(v1 * x1 + v2 * x2 + v3 + c), target,
                                   xgrad::Reduction::sum);
        });
    std::printf("Learned: w1 = %.4f, w2 = %.4f, w3 = %.4f, b = %.4f\n", v1.item(), v2.item(),
                v3.item(), c.item());

    if (tanh_epochs < 0 || sigmoid_epochs < 0) {
        std::printf("FAILED: a network did not reach loss %.2f within %d epochs\n", kTargetLoss,
                    kMaxEpochs);
        return 1;
    }
    std::printf("Both networks reached loss < %.2f: tanh in %d epochs, sigmoid in %d epochs\n",
                kTargetLoss, tanh_epochs, sigmoid_epochs);
    return 0;
}
