#pragma once

// Data augmentation: random changes of a batch of images, drawn per example
// from a seeded Generator, so that the same seed gives the same batches.
// Images have shape (N, H, W) or (N, C, H, W) and any dtype. Every channel
// of an example gets the same change. Set DataLoaderOptions::augment to run an
// augmentation on each batch as the loader produces it:
//
//     loader_options.augment = data::compose(
//         {data::RandomCrop{.padding = 2}, data::RandomHorizontalFlip{}});
//
// Augmentations are not differentiable: they return new tensors without
// tape history and reject images that require grad.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "xgrad/random.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::data {

/// A random change of a batch of inputs: returns a new tensor made from
/// `inputs` and draws from `generator`. It must keep the number of examples
/// (axis 0) and leave `inputs` unchanged.
using Augmentation = std::function<Tensor(const Tensor& inputs, Generator& generator)>;

/// Pads each image with `padding` zeros on every side, then crops a window
/// of height x width at an offset drawn uniformly per example (row offset,
/// then column offset, each in [0, H + 2 padding - height]). With height and
/// width left at 0 the crop keeps the input's size, which moves each image
/// by up to `padding` pixels in each direction with zeros filled in: the
/// same distribution as RandomShift{padding}. Throws shape_error when the
/// window does not fit in the padded image.
struct RandomCrop {
    std::size_t padding = 0;  ///< zeros added on each side before cropping
    std::size_t height = 0;   ///< window height; 0 keeps the input's height
    std::size_t width = 0;    ///< window width; 0 keeps the input's width

    Tensor operator()(const Tensor& images, Generator& generator) const;
};

/// Mirrors each image left to right with probability p, drawn per example
/// (one uniform draw per example, also for p = 0 and p = 1). Throws
/// value_error unless 0 <= p <= 1.
struct RandomHorizontalFlip {
    double p = 0.5;

    Tensor operator()(const Tensor& images, Generator& generator) const;
};

/// Moves each image by a whole number of pixels drawn uniformly per example
/// from [-max_shift, max_shift] (rows, then columns), filling the uncovered
/// pixels with zeros.
struct RandomShift {
    std::size_t max_shift = 2;

    Tensor operator()(const Tensor& images, Generator& generator) const;
};

/// Runs `steps` in order, all drawing from the same generator.
Augmentation compose(std::vector<Augmentation> steps);

/// Moves every image of the batch down by `rows` and right by `cols` pixels
/// (negative values move up and left), filling uncovered pixels with zeros.
Tensor translate(const Tensor& images, std::int64_t rows, std::int64_t cols);

/// Mirrors every image of the batch left to right.
Tensor horizontal_flip(const Tensor& images);

}  // namespace xgrad::data
