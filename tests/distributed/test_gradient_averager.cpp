#include "distributed_testing.hpp"

using namespace xgrad;
using xgrad::testing::small_dataset;
using xgrad::testing::small_mlp;
using xgrad::testing::world_context;

namespace {

// Leaf tensors that require grad: a float32 vector and a float64 matrix.
std::vector<Tensor> leaves() {
    Tensor single = zeros({5}, Dtype::float32);
    Tensor pair = zeros({2, 3}, Dtype::float64);
    single.requires_grad_(true);
    pair.requires_grad_(true);
    return {single, pair};
}

}  // namespace

TEST_SUITE("gradient averager") {
    TEST_CASE("equal weights give the mean gradient") {
        const auto& context = world_context();
        const double n = static_cast<double>(context.size());
        std::vector<Tensor> parameters = leaves();
        const double value = static_cast<double>(context.rank()) + 1.0;
        parameters[0].set_grad(full({5}, value, Dtype::float32));
        parameters[1].set_grad(full({2, 3}, value, Dtype::float64));
        const Tensor grad_handle = parameters[1].grad();

        distributed::GradientAverager averager(context, parameters);
        averager.average();
        CHECK(parameters[0].grad().values<float>()(4) == doctest::Approx((n + 1.0) / 2.0));
        CHECK(parameters[1].grad().values<double>()(1, 2) == (n + 1.0) / 2.0);
        // In place: the gradient keeps its storage.
        CHECK(grad_handle.values<double>()(0, 0) == (n + 1.0) / 2.0);
    }

    TEST_CASE("weights give the mean over all examples") {
        // Rank r has r + 1 examples whose mean gradient is r + 1: the mean
        // over all examples is sum (r+1)^2 / sum (r+1) = (2N + 1) / 3.
        const auto& context = world_context();
        const double n = static_cast<double>(context.size());
        std::vector<Tensor> parameters = leaves();
        const double value = static_cast<double>(context.rank()) + 1.0;
        parameters[1].set_grad(full({2, 3}, value, Dtype::float64));
        parameters[0].set_grad(full({5}, value, Dtype::float32));

        distributed::GradientAverager averager(context, parameters);
        averager.average(value);
        CHECK(parameters[1].grad().values<double>()(0, 2) ==
              doctest::Approx((2.0 * n + 1.0) / 3.0).epsilon(1e-15));
        CHECK(parameters[0].grad().values<float>()(0) == doctest::Approx((2.0 * n + 1.0) / 3.0));
    }

    TEST_CASE("a missing gradient counts as zeros") {
        // Only rank 0 has a gradient for the float64 leaf: every rank gets
        // rank 0's gradient divided by N. No rank has one for the float32
        // leaf, which keeps none.
        const auto& context = world_context();
        const double n = static_cast<double>(context.size());
        std::vector<Tensor> parameters = leaves();
        if (context.is_root()) {
            parameters[1].set_grad(full({2, 3}, 6.0, Dtype::float64));
        }
        distributed::GradientAverager averager(context, parameters);
        averager.average();
        CHECK_FALSE(parameters[0].grad().defined());
        CHECK(parameters[1].grad().defined());
        if (parameters[1].grad().defined()) {
            CHECK(parameters[1].grad().values<double>()(1, 1) == doctest::Approx(6.0 / n));
        }
    }

    TEST_CASE("bucket size changes the messages, not the result") {
        const auto& context = world_context();
        auto model = small_mlp(5);
        const data::TensorDataset dataset = small_dataset(6, 10 + context.rank());
        std::vector<std::vector<double>> results;
        for (std::size_t bucket_bytes : {std::size_t{1} << 20, std::size_t{64}, std::size_t{1}}) {
            distributed::GradientAverager averager(context, *model, {.bucket_bytes = bucket_bytes});
            model->zero_grad();
            cross_entropy((*model)(dataset.inputs()), dataset.targets()).backward();
            averager.average();
            std::vector<double> flat;
            for (const Tensor& parameter : model->parameters()) {
                const auto& grad = parameter.grad().values<double>();
                flat.insert(flat.end(), grad.begin(), grad.end());
            }
            results.push_back(flat);
            // 5*8 + 8 + 8*3 + 3 = 75 float64 gradients after 2 + 4 header
            // scalars: 81 doubles in 648 bytes.
            std::size_t expected = 1;
            if (bucket_bytes == 64) {
                expected = 11;  // 8 doubles per bucket
            } else if (bucket_bytes == 1) {
                expected = 81;  // a bucket is never smaller than one element
            }
            CHECK(averager.bucket_count() == expected);
        }
        CHECK(results[1] == results[0]);
        CHECK(results[2] == results[0]);
    }

    TEST_CASE("a bad weight throws on every rank") {
        const auto& context = world_context();
        std::vector<Tensor> parameters = leaves();
        parameters[1].set_grad(full({2, 3}, 1.0, Dtype::float64));
        distributed::GradientAverager averager(context, parameters);
        const double weight = context.is_root() ? std::nan("") : 1.0;
        CHECK_THROWS_WITH_AS(averager.average(weight),
                             doctest::Contains("GradientAverager::average: 1 of"), value_error);
        CHECK(parameters[1].grad().values<double>()(0, 0) == 1.0);
        CHECK_THROWS_WITH_AS(averager.average(0.0), doctest::Contains("sum to zero"), value_error);
    }

    TEST_CASE("averager rejects a tensor that is not a parameter") {
        const auto& context = world_context();
        CHECK_THROWS_WITH_AS(
            distributed::GradientAverager(context, std::vector<Tensor>{zeros({2})}),
            doctest::Contains("GradientAverager: parameter 0 must be"), value_error);
        std::vector<Tensor> parameters = leaves();
        CHECK_THROWS_WITH_AS(distributed::GradientAverager(context, parameters, {.bucket_bytes = 0}),
                             doctest::Contains("bucket_bytes must be positive"), value_error);
    }
}
