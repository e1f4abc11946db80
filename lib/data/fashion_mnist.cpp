#include "xgrad/data/fashion_mnist.hpp"

#include <cstdlib>
#include <string>

#include "xgrad/data/idx.hpp"
#include "xgrad/ops/binary.hpp"

namespace xgrad::data {

namespace {

std::filesystem::path find_file(const std::filesystem::path& dir, const std::string& stem) {
    for (const char* suffix : {".gz", ""}) {
        const std::filesystem::path candidate = dir / (stem + suffix);
        if (std::filesystem::exists(candidate)) {
            return candidate;
        }
    }
    throw io_error("Fashion-MNIST: " + stem + "[.gz] not found in '" + dir.string() +
                   "'. Install the data set with 'sudo apt-get install dataset-fashion-mnist' "
                   "(scripts/setup does this), or point XGRAD_DATA_DIR or --data-dir at a "
                   "directory holding the four IDX files");
}

}  // namespace

std::filesystem::path fashion_mnist_dir() {
    const char* configured = std::getenv("XGRAD_DATA_DIR");
    if (configured != nullptr && *configured != '\0') {
        return configured;
    }
    return kFashionMnistDebianDir;
}

TensorDataset load_fashion_mnist(const std::filesystem::path& dir, Split split, std::size_t limit) {
    const std::string prefix = split == Split::train ? "train" : "t10k";
    const IdxFile images = read_idx(find_file(dir, prefix + "-images-idx3-ubyte"));
    const IdxFile labels = read_idx(find_file(dir, prefix + "-labels-idx1-ubyte"));

    if (images.type != IdxType::uint8 || images.shape.size() != 3 || images.shape[1] != 28 ||
        images.shape[2] != 28) {
        throw io_error("Fashion-MNIST: the " + prefix + " images in '" + dir.string() +
                       "' have shape " + shape_string(images.shape) +
                       "; expected unsigned bytes of shape (n, 28, 28)");
    }
    if (labels.type != IdxType::uint8 || labels.shape != Shape{images.shape[0]}) {
        throw io_error("Fashion-MNIST: the " + prefix + " labels in '" + dir.string() +
                       "' have shape " + shape_string(labels.shape) + " for " +
                       std::to_string(images.shape[0]) + " images");
    }
    for (std::size_t i = 0; i < labels.data.size(); ++i) {
        if (labels.data[i] >= kFashionMnistClasses.size()) {
            throw io_error("Fashion-MNIST: label " + std::to_string(labels.data[i]) + " at position " +
                           std::to_string(i) + " of the " + prefix + " labels in '" + dir.string() +
                           "' is outside 0..9");
        }
    }

    const std::size_t total = images.shape[0];
    const std::size_t n = limit > 0 && limit < total ? limit : total;
    constexpr std::size_t kPixels = 28 * 28;
    xt::xarray<float> inputs(Shape{n, kPixels});
    for (std::size_t i = 0; i < n * kPixels; ++i) {
        inputs.flat(i) = static_cast<float>(images.data[i]) / 255.0f;
    }
    xt::xarray<std::int64_t> targets(Shape{n});
    for (std::size_t i = 0; i < n; ++i) {
        targets.flat(i) = labels.data[i];
    }
    return TensorDataset(Tensor(std::move(inputs)), Tensor(std::move(targets)));
}

}  // namespace xgrad::data
