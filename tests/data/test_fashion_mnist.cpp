#include <cstdlib>

#include "testing.hpp"

using namespace xgrad;

TEST_SUITE("fashion mnist") {
    TEST_CASE("loads the Debian package's files") {
        const auto dir = data::fashion_mnist_dir();
        INFO("data directory: ", dir.string(), " (scripts/setup installs dataset-fashion-mnist)");
        const data::TensorDataset test = data::load_fashion_mnist(dir, data::Split::test);
        CHECK(test.size() == 10000);
        CHECK(test.inputs().shape() == Shape{10000, 784});
        CHECK(test.inputs().dtype() == Dtype::float32);
        CHECK(min(test.inputs()).item() == 0.0);
        CHECK(max(test.inputs()).item() == 1.0);
        // Every class appears exactly 1000 times in the test split.
        std::vector<int> counts(10, 0);
        for (std::int64_t label : test.targets().values<std::int64_t>()) {
            ++counts[static_cast<std::size_t>(label)];
        }
        CHECK(counts == std::vector<int>(10, 1000));

        const data::TensorDataset train = data::load_fashion_mnist(dir, data::Split::train, 500);
        CHECK(train.size() == 500);
        // The first training image is an ankle boot.
        CHECK(train.targets().values<std::int64_t>()(0) == 9);
    }

    TEST_CASE("a missing directory says how to install the data") {
        CHECK_THROWS_WITH_AS(data::load_fashion_mnist("/nonexistent/xgrad-data", data::Split::train),
                             doctest::Contains("sudo apt-get install dataset-fashion-mnist"),
                             io_error);
    }

    TEST_CASE("XGRAD_DATA_DIR overrides the default") {
        ::setenv("XGRAD_DATA_DIR", "/tmp/somewhere", 1);
        CHECK(data::fashion_mnist_dir() == "/tmp/somewhere");
        ::unsetenv("XGRAD_DATA_DIR");
        CHECK(data::fashion_mnist_dir() == data::kFashionMnistDebianDir);
    }
}
