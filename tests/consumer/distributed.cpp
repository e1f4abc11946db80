// Averages a parameter over the ranks through the installed
// xgrad::distributed and exits with 0 when the average is right. The
// consumer_install test runs it as one process.

#include <cstdio>

#include <xgrad/distributed.hpp>
#include <xgrad/xgrad.hpp>

namespace {

class Scalar : public xgrad::nn::Module {
public:
    explicit Scalar(double value) { w = register_parameter("w", xgrad::full({}, value, xgrad::Dtype::float64)); }
    xgrad::Tensor w;
};

}  // namespace

int main() {
    xgrad::distributed::Context context;
    Scalar model(static_cast<double>(context.rank()) + 1.0);
    xgrad::distributed::average_parameters(context, model);
    const double expected = (static_cast<double>(context.size()) + 1.0) / 2.0;
    std::printf("rank %zu of %zu: w = %.3f\n", context.rank(), context.size(), model.w.item());
    return model.w.item() == expected ? 0 : 1;
}
