#include "xgrad/data/augment.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace xgrad::data {

namespace {

// Images seen as (N, C, H, W); images of shape (N, H, W) have C = 1.
struct ImageLayout {
    std::size_t batch = 0;
    std::size_t channels = 1;
    std::size_t height = 0;
    std::size_t width = 0;
};

ImageLayout image_layout(const std::string& name, const Tensor& images) {
    if (!images.defined()) {
        throw value_error(name + ": the images are an undefined tensor");
    }
    const Shape& shape = images.shape();
    if (shape.size() != 3 && shape.size() != 4) {
        throw shape_error(name +
                          ": expected images of shape (N, H, W) or (N, C, H, W), got shape " +
                          shape_string(shape) +
                          "; reshape flat inputs first, for example (N, 784) to (N, 1, 28, 28)");
    }
    if (images.requires_grad()) {
        throw value_error(name +
                          ": the images require grad, but augmentations are not "
                          "differentiable; pass images.detach()");
    }
    ImageLayout layout{.batch = shape[0], .height = shape[shape.size() - 2], .width = shape.back()};
    if (shape.size() == 4) {
        layout.channels = shape[1];
    }
    return layout;
}

// The source offset of one example: output pixel (i, j) takes input pixel
// (i + row_offset, j + col_offset), or zero when that lies outside.
struct Placement {
    std::int64_t row_offset = 0;
    std::int64_t col_offset = 0;
};

// Copies one plane of height x width into a plane of out_height x out_width
// at `placement`, a row segment at a time.
template <class T>
void place_plane(const T* in, const ImageLayout& layout, Placement placement,
                 std::size_t out_height, std::size_t out_width, T* out) {
    const auto height = static_cast<std::int64_t>(layout.height);
    const auto width = static_cast<std::int64_t>(layout.width);
    const auto columns = static_cast<std::int64_t>(out_width);
    // Output columns [first, last) read input columns inside [0, width).
    const std::int64_t first = std::clamp<std::int64_t>(-placement.col_offset, 0, columns);
    const std::int64_t last =
        std::clamp<std::int64_t>(width - placement.col_offset, first, columns);
    for (std::size_t i = 0; i < out_height; ++i) {
        T* row = out + i * out_width;
        const std::int64_t source = static_cast<std::int64_t>(i) + placement.row_offset;
        if (source < 0 || source >= height || first == last) {
            std::fill(row, row + out_width, T(0));
            continue;
        }
        const T* source_row = in + source * width;
        std::fill(row, row + first, T(0));
        std::copy(source_row + first + placement.col_offset,
                  source_row + last + placement.col_offset, row + first);
        std::fill(row + last, row + columns, T(0));
    }
}

// Builds the batch whose example n is example n of `images` placed by
// placements[n], with out_height x out_width images.
Tensor place_batch(const Tensor& images, const ImageLayout& layout,
                   const std::vector<Placement>& placements, std::size_t out_height,
                   std::size_t out_width) {
    Shape shape = images.shape();
    shape[shape.size() - 2] = out_height;
    shape[shape.size() - 1] = out_width;
    detail::Array result = detail::Array::uninitialized(images.dtype(), shape);
    detail::visit_dtype(images.dtype(), [&](auto zero) {
        using T = decltype(zero);
        const T* in = images.values<T>().data();
        T* out = result.get<T>().data();
        const std::size_t in_plane = layout.height * layout.width;
        const std::size_t out_plane = out_height * out_width;
        for (std::size_t n = 0; n < layout.batch; ++n) {
            for (std::size_t c = 0; c < layout.channels; ++c) {
                const std::size_t plane = n * layout.channels + c;
                place_plane(in + plane * in_plane, layout, placements[n], out_height, out_width,
                            out + plane * out_plane);
            }
        }
    });
    return Tensor(std::move(result));
}

// Mirrors example n left to right where flips[n] is set and copies it otherwise.
Tensor flip_batch(const Tensor& images, const ImageLayout& layout, const std::vector<char>& flips) {
    detail::Array result = detail::Array::uninitialized(images.dtype(), images.shape());
    detail::visit_dtype(images.dtype(), [&](auto zero) {
        using T = decltype(zero);
        const T* in = images.values<T>().data();
        T* out = result.get<T>().data();
        const std::size_t example_size = layout.channels * layout.height * layout.width;
        for (std::size_t n = 0; n < layout.batch; ++n) {
            const T* source = in + n * example_size;
            T* target = out + n * example_size;
            if (!flips[n]) {
                std::copy(source, source + example_size, target);
                continue;
            }
            for (std::size_t row = 0; row < layout.channels * layout.height; ++row) {
                const T* source_row = source + row * layout.width;
                std::reverse_copy(source_row, source_row + layout.width,
                                  target + row * layout.width);
            }
        }
    });
    return Tensor(std::move(result));
}

// Paddings and shifts beyond this would overflow the padded sizes and the
// offsets; no image is that large.
constexpr std::size_t kLargestMove = std::size_t{1} << 30;

void check_move(const char* augmentation, const char* field, std::size_t value) {
    if (value > kLargestMove) {
        throw value_error(std::string(augmentation) + ": " + field + " is " +
                          std::to_string(value) + ", larger than the limit of " +
                          std::to_string(kLargestMove) + " pixels");
    }
}

}  // namespace

Tensor RandomCrop::operator()(const Tensor& images, Generator& generator) const {
    const ImageLayout layout = image_layout("RandomCrop", images);
    check_move("RandomCrop", "padding", padding);
    const std::size_t out_height = height == 0 ? layout.height : height;
    const std::size_t out_width = width == 0 ? layout.width : width;
    const std::size_t padded_height = layout.height + 2 * padding;
    const std::size_t padded_width = layout.width + 2 * padding;
    if (out_height > padded_height || out_width > padded_width) {
        throw shape_error(
            "RandomCrop: a " + std::to_string(out_height) + " x " + std::to_string(out_width) +
            " window does not fit in images of shape " + shape_string(images.shape()) +
            " padded by " + std::to_string(padding) + " to " + std::to_string(padded_height) +
            " x " + std::to_string(padded_width) + "; lower height and width or raise the padding");
    }

    // Offset o in the padded image is offset o - padding in the input.
    const auto pad = static_cast<std::int64_t>(padding);
    std::vector<Placement> placements(layout.batch);
    for (Placement& placement : placements) {
        placement.row_offset =
            static_cast<std::int64_t>(generator.below(padded_height - out_height + 1)) - pad;
        placement.col_offset =
            static_cast<std::int64_t>(generator.below(padded_width - out_width + 1)) - pad;
    }
    return place_batch(images, layout, placements, out_height, out_width);
}

Tensor RandomHorizontalFlip::operator()(const Tensor& images, Generator& generator) const {
    if (!(p >= 0.0 && p <= 1.0)) {
        throw value_error("RandomHorizontalFlip: p must be in [0, 1], got " + format_number(p));
    }
    const ImageLayout layout = image_layout("RandomHorizontalFlip", images);
    std::vector<char> flips(layout.batch);
    for (char& flip : flips) {
        flip = generator.uniform() < p ? 1 : 0;
    }
    return flip_batch(images, layout, flips);
}

Tensor RandomShift::operator()(const Tensor& images, Generator& generator) const {
    const ImageLayout layout = image_layout("RandomShift", images);
    check_move("RandomShift", "max_shift", max_shift);
    const auto largest = static_cast<std::int64_t>(max_shift);
    const std::uint64_t choices = 2 * max_shift + 1;
    std::vector<Placement> placements(layout.batch);
    for (Placement& placement : placements) {
        // A shift of s pixels reads from s pixels back.
        placement.row_offset = largest - static_cast<std::int64_t>(generator.below(choices));
        placement.col_offset = largest - static_cast<std::int64_t>(generator.below(choices));
    }
    return place_batch(images, layout, placements, layout.height, layout.width);
}

Augmentation compose(std::vector<Augmentation> steps) {
    for (std::size_t i = 0; i < steps.size(); ++i) {
        if (!steps[i]) {
            throw value_error("compose: step " + std::to_string(i) + " is an empty Augmentation");
        }
    }
    return [steps = std::move(steps)](const Tensor& inputs, Generator& generator) {
        Tensor result = inputs;
        for (const Augmentation& step : steps) {
            result = step(result, generator);
        }
        return result;
    };
}

Tensor translate(const Tensor& images, std::int64_t rows, std::int64_t cols) {
    const ImageLayout layout = image_layout("translate", images);
    // A move by the full height or width already leaves only zeros; clamping
    // keeps the negation below from overflowing.
    const auto height = static_cast<std::int64_t>(layout.height);
    const auto width = static_cast<std::int64_t>(layout.width);
    const Placement placement{.row_offset = -std::clamp(rows, -height, height),
                              .col_offset = -std::clamp(cols, -width, width)};
    const std::vector<Placement> placements(layout.batch, placement);
    return place_batch(images, layout, placements, layout.height, layout.width);
}

Tensor horizontal_flip(const Tensor& images) {
    const ImageLayout layout = image_layout("horizontal_flip", images);
    return flip_batch(images, layout, std::vector<char>(layout.batch, 1));
}

}  // namespace xgrad::data
