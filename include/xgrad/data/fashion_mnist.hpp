#pragma once

// Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 60,000 training and
// 10,000 test images of clothing, 28 x 28 grey pixels, in 10 classes. Debian
// packages it as dataset-fashion-mnist, which scripts/setup installs.

#include <array>
#include <cstddef>
#include <filesystem>

#include "xgrad/data/dataset.hpp"

namespace xgrad::data {

/// Class names, indexed by label.
inline constexpr std::array<const char*, 10> kFashionMnistClasses = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/// The directory of Debian's dataset-fashion-mnist package.
inline constexpr const char* kFashionMnistDebianDir = "/usr/share/datasets/fashion-mnist";

/// The data directory: $XGRAD_DATA_DIR when set and non-empty, otherwise the
/// Debian package's directory.
std::filesystem::path fashion_mnist_dir();

enum class Split { train, test };

/// Loads one split from `dir`: inputs float32 of shape (n, 784) with pixels
/// scaled to [0, 1], targets int64 labels of shape (n). With `limit` > 0 only
/// the first `limit` examples are kept. Reads {train,t10k}-{images-idx3,
/// labels-idx1}-ubyte, gzip-compressed (.gz) or not. A missing directory or
/// file throws io_error saying how to install the data set.
TensorDataset load_fashion_mnist(const std::filesystem::path& dir, Split split,
                                 std::size_t limit = 0);

}  // namespace xgrad::data
