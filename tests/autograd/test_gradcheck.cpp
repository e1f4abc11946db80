#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::random_input;

namespace {

// y = x^3 with a deliberately wrong VJP (2x instead of 3x^2): gradcheck must
// catch it. Defining it here also shows that an op can live outside the library.
struct WrongCube {
    static constexpr OpInfo kInfo{.name = "test_wrong_cube", .saved_inputs = kSaveInput0};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto& x = args.values<T>(0);
        y = x * x * x;
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        *args.grad<T>(0) = args.grad_output<T>() * T(2) * args.values<T>(0);
    }
};

const OpDef& kWrongCube = define_op<WrongCube>();

// Same op, right VJP, and a gradient of the wrong shape.
struct BadShape {
    static constexpr OpInfo kInfo{.name = "test_bad_shape"};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        y = args.values<T>(0);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        *args.grad<T>(0) = xt::xarray<T>({1}, T(1));
    }
};

const OpDef& kBadShape = define_op<BadShape>();

}  // namespace

TEST_SUITE("gradcheck") {
    TEST_CASE("wrong VJP fails") {
        const auto result = gradcheck([](const auto& in) { return apply(kWrongCube, in[0]); },
                                      {random_input({3, 2}, 1, 0.5, 2.0)});
        CHECK_FALSE(result.passed);
        CHECK(result.message.find("gradcheck failed") != std::string::npos);
        CHECK(result.error > 0.1);
    }

    TEST_CASE("correct composite passes and reports its worst element") {
        const auto result = gradcheck(
            [](const auto& in) { return tanh(matmul(in[0], in[1])) * in[0]; },
            {random_input({3, 3}, 2), random_input({3, 3}, 3)});
        CHECK(result.passed);
        CHECK(result.message.find("worst element input") != std::string::npos);
    }

    TEST_CASE("all-zero gradients do not pass") {
        // relu of negative inputs is flat: both gradients are zero.
        const auto result = gradcheck([](const auto& in) { return relu(in[0]); },
                                      {random_input({4}, 4, -2.0, -1.0)});
        CHECK_FALSE(result.passed);
        CHECK(result.message.find("both gradients are zero") != std::string::npos);
    }

    TEST_CASE("weighted sum catches what a plain sum hides") {
        // softmax outputs sum to 1, so a plain sum has zero gradient: a VJP
        // that returned zeros would pass. The weighted sum does not.
        const auto result = gradcheck([](const auto& in) { return softmax(in[0]); },
                                      {random_input({5}, 5)});
        CHECK(result.passed);
        CHECK(std::abs(result.analytic) > 0.0);
    }

    TEST_CASE("gradient of wrong shape is rejected by the tape") {
        Tensor x = random_input({2, 2}, 6);
        CHECK_THROWS_WITH_AS(sum(apply(kBadShape, x)).backward(),
                             doctest::Contains("test_bad_shape: the VJP returned a gradient of shape (1)"),
                             shape_error);
    }

    TEST_CASE("float32 inputs are rejected") {
        Tensor x = zeros({2});
        x.requires_grad_(true);
        CHECK_THROWS_WITH_AS(gradcheck([](const auto& in) { return in[0]; }, {x}),
                             doctest::Contains("need float64 inputs"), value_error);
    }

    TEST_CASE("caller gradients stay untouched") {
        Tensor x = random_input({3}, 7);
        CHECK(gradcheck([](const auto& in) { return exp(in[0]); }, {x}).passed);
        CHECK_FALSE(x.grad().defined());
    }

    TEST_CASE("registry lists user ops") {
        bool found = false;
        for (const OpDef* op : registered_ops()) {
            found = found || std::string(op->info.name) == "test_wrong_cube";
        }
        CHECK(found);
    }
}
