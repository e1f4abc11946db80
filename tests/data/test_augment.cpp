#include <limits>
#include <set>

#include <xtensor/xview.hpp>

#include "testing.hpp"

using namespace xgrad;

namespace {

// The 3 x 3 image used by the hand-worked cases, as a batch of one (1, 3, 3).
Tensor three_by_three() {
    return Tensor(xt::xarray<float>{{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}});
}

const xt::xarray<float>& pixels(const Tensor& images) {
    return images.values<float>();
}

// `count` copies of the 3 x 3 image, (count, 3, 3).
Tensor copies_of_three_by_three(std::size_t count) {
    xt::xarray<float> batch(Shape{count, 3, 3});
    for (std::size_t n = 0; n < count; ++n) {
        xt::view(batch, n) = xt::view(pixels(three_by_three()), 0);
    }
    return Tensor(std::move(batch));
}

Tensor random_images(const Shape& shape, std::uint64_t seed) {
    Generator generator(seed);
    return uniform(shape, 0.0, 1.0, generator);
}

// Pads every image of (N, C, H, W) with `padding` zeros on each side and
// cuts the height x width window at the given per-example offsets: a direct
// reference for RandomCrop, written without its code.
xt::xarray<float> pad_and_crop(const xt::xarray<float>& images, std::size_t padding,
                               std::size_t height, std::size_t width,
                               const std::vector<std::pair<std::size_t, std::size_t>>& offsets) {
    const auto& shape = images.shape();
    xt::xarray<float> padded =
        xt::zeros<float>(Shape{shape[0], shape[1], shape[2] + 2 * padding, shape[3] + 2 * padding});
    xt::view(padded, xt::all(), xt::all(), xt::range(padding, padding + shape[2]),
             xt::range(padding, padding + shape[3])) = images;
    xt::xarray<float> crops(Shape{shape[0], shape[1], height, width});
    for (std::size_t n = 0; n < shape[0]; ++n) {
        const auto [row, col] = offsets[n];
        xt::view(crops, n) = xt::view(padded, n, xt::all(), xt::range(row, row + height),
                                      xt::range(col, col + width));
    }
    return crops;
}

std::vector<std::vector<float>> epoch_inputs(data::DataLoader& loader) {
    std::vector<std::vector<float>> batches;
    for (const data::Batch& batch : loader) {
        const auto& values = batch.inputs.values<float>();
        batches.emplace_back(values.begin(), values.end());
    }
    return batches;
}

data::TensorDataset small_image_dataset(std::size_t n = 20) {
    xt::xarray<std::int64_t> labels(Shape{n});
    for (std::size_t i = 0; i < n; ++i) {
        labels(i) = static_cast<std::int64_t>(i);
    }
    return data::TensorDataset(random_images({n, 1, 6, 6}, 3), Tensor(labels));
}

// The usage snippet of docs/data-augmentation.md, kept here so it compiles.
data::DataLoader make_augmented_loader(const data::TensorDataset& train) {
    // Fashion-MNIST inputs are flat, (n, 784); augmentations need images.
    const auto n = static_cast<std::int64_t>(train.size());
    const data::TensorDataset images(reshape(train.inputs(), {n, 1, 28, 28}), train.targets());

    // Each epoch, every image gets a new random crop (zero padding 2, so a
    // shift of up to 2 pixels) and, with probability 0.5, a mirror image.
    return data::DataLoader(
        images, {.batch_size = 128,
                 .seed = 1,
                 .augment = data::compose(
                     {data::RandomCrop{.padding = 2}, data::RandomHorizontalFlip{.p = 0.5}})});
}

}  // namespace

TEST_SUITE("augment") {
    TEST_CASE("translate a 3x3 image by hand") {
        const Tensor image = three_by_three();
        CHECK(pixels(data::translate(image, 1, 0)) ==
              xt::xarray<float>{{{0, 0, 0}, {1, 2, 3}, {4, 5, 6}}});
        CHECK(pixels(data::translate(image, 0, -1)) ==
              xt::xarray<float>{{{2, 3, 0}, {5, 6, 0}, {8, 9, 0}}});
        CHECK(pixels(data::translate(image, -1, 2)) ==
              xt::xarray<float>{{{0, 0, 4}, {0, 0, 7}, {0, 0, 0}}});
        CHECK(pixels(data::translate(image, 0, 0)) == pixels(image));
        CHECK(pixels(data::translate(image, 3, 0)) == xt::zeros<float>({1, 3, 3}));
        CHECK(pixels(data::translate(image, 0, std::numeric_limits<std::int64_t>::min())) ==
              xt::zeros<float>({1, 3, 3}));
        // The stored image is untouched.
        CHECK(pixels(image) == pixels(three_by_three()));
    }

    TEST_CASE("horizontal flip by hand") {
        CHECK(pixels(data::horizontal_flip(three_by_three())) ==
              xt::xarray<float>{{{3, 2, 1}, {6, 5, 4}, {9, 8, 7}}});
        // Two channels of one example, (1, 2, 2, 3).
        const Tensor two_channels(
            xt::xarray<float>{{{{1, 2, 3}, {4, 5, 6}}, {{7, 8, 9}, {0, 1, 2}}}});
        CHECK(pixels(data::horizontal_flip(two_channels)) ==
              xt::xarray<float>{{{{3, 2, 1}, {6, 5, 4}}, {{9, 8, 7}, {2, 1, 0}}}});
    }

    TEST_CASE("translate keeps the dtype") {
        const Tensor bytes(xt::xarray<std::uint8_t>{{{1, 2}, {3, 4}}});
        CHECK(data::translate(bytes, 0, 1).values<std::uint8_t>() ==
              xt::xarray<std::uint8_t>{{{0, 1}, {0, 3}}});
        const Tensor integers(xt::xarray<std::int64_t>{{{1, 2}, {3, 4}}});
        CHECK(data::horizontal_flip(integers).values<std::int64_t>() ==
              xt::xarray<std::int64_t>{{{2, 1}, {4, 3}}});
    }

    TEST_CASE("random crop with padding gives every shift") {
        // With padding 1 and the input's size, each output is the image moved
        // by -1, 0 or 1 pixels in each direction: nine possible results.
        const Tensor batch = copies_of_three_by_three(200);
        Generator generator(4);
        const Tensor crops = data::RandomCrop{.padding = 1}(batch, generator);
        CHECK(crops.shape() == Shape{200, 3, 3});
        std::set<std::pair<int, int>> seen;
        for (std::size_t n = 0; n < 200; ++n) {
            const xt::xarray<float> crop = xt::view(pixels(crops), xt::range(n, n + 1));
            bool matched = false;
            for (int rows = -1; rows <= 1 && !matched; ++rows) {
                for (int cols = -1; cols <= 1 && !matched; ++cols) {
                    if (crop == pixels(data::translate(three_by_three(), rows, cols))) {
                        seen.insert({rows, cols});
                        matched = true;
                    }
                }
            }
            CHECK(matched);
        }
        CHECK(seen.size() == 9);
        // The crop at padded offset (0, 2), worked by hand: the window covers
        // padded rows 0-2 and columns 2-4 of the 5 x 5 padded image.
        CHECK(pixels(data::translate(three_by_three(), 1, -1)) ==
              xt::xarray<float>{{{0, 0, 0}, {2, 3, 0}, {5, 6, 0}}});
    }

    TEST_CASE("random crop matches padding then cropping") {
        const Tensor images = random_images({30, 2, 5, 6}, 5);
        const data::RandomCrop crop{.padding = 2, .height = 4, .width = 5};
        Generator generator(6);
        Generator replay = generator;
        const Tensor crops = crop(images, generator);
        // The offsets are drawn per example, row first, from [0, 5 + 4 - 4]
        // and [0, 6 + 4 - 5].
        std::vector<std::pair<std::size_t, std::size_t>> offsets;
        for (std::size_t n = 0; n < 30; ++n) {
            const std::size_t row = replay.below(6);
            const std::size_t col = replay.below(6);
            offsets.emplace_back(row, col);
        }
        CHECK(pixels(crops) == pad_and_crop(pixels(images), 2, 4, 5, offsets));
        // Without padding, a window smaller than the image.
        const Tensor inner = data::RandomCrop{.height = 3, .width = 3}(images, generator);
        CHECK(inner.shape() == Shape{30, 2, 3, 3});
    }

    TEST_CASE("random shift stays within max_shift") {
        const Tensor batch = copies_of_three_by_three(300);
        Generator generator(7);
        const Tensor shifted = data::RandomShift{.max_shift = 1}(batch, generator);
        std::set<std::pair<int, int>> seen;
        for (std::size_t n = 0; n < 300; ++n) {
            const xt::xarray<float> image = xt::view(pixels(shifted), xt::range(n, n + 1));
            for (int rows = -1; rows <= 1; ++rows) {
                for (int cols = -1; cols <= 1; ++cols) {
                    if (image == pixels(data::translate(three_by_three(), rows, cols))) {
                        seen.insert({rows, cols});
                    }
                }
            }
        }
        CHECK(seen.size() == 9);
        Generator unchanged(8);
        CHECK(pixels(data::RandomShift{.max_shift = 0}(batch, unchanged)) == pixels(batch));
    }

    TEST_CASE("random flip per example") {
        const Tensor batch = copies_of_three_by_three(1000);
        const xt::xarray<float> original = pixels(three_by_three());
        const xt::xarray<float> flipped = pixels(data::horizontal_flip(three_by_three()));
        Generator generator(9);
        Generator replay = generator;
        const Tensor result = data::RandomHorizontalFlip{}(batch, generator);
        std::size_t flips = 0;
        for (std::size_t n = 0; n < 1000; ++n) {
            const xt::xarray<float> image = xt::view(pixels(result), xt::range(n, n + 1));
            const bool expect_flip = replay.uniform() < 0.5;
            CHECK(image == (expect_flip ? flipped : original));
            flips += expect_flip ? 1 : 0;
        }
        CHECK(flips > 400);
        CHECK(flips < 600);
        Generator always(10);
        CHECK(pixels(data::RandomHorizontalFlip{.p = 1.0}(copies_of_three_by_three(5), always)) ==
              pixels(data::horizontal_flip(copies_of_three_by_three(5))));
        CHECK(pixels(data::RandomHorizontalFlip{.p = 0.0}(batch, always)) == pixels(batch));
    }

    TEST_CASE("same seed gives the same batches") {
        const Tensor images = random_images({16, 3, 8, 8}, 11);
        const data::Augmentation augment = data::compose(
            {data::RandomCrop{.padding = 2}, data::RandomHorizontalFlip{}, data::RandomShift{}});
        Generator first(12);
        Generator second(12);
        Generator other(13);
        const Tensor a = augment(images, first);
        CHECK(pixels(augment(images, second)) == pixels(a));
        CHECK(pixels(augment(images, other)) != pixels(a));
        // The generator moved on, so the next call differs.
        CHECK(pixels(augment(images, first)) != pixels(a));
    }

    TEST_CASE("loader augments each batch on the fly") {
        const data::TensorDataset dataset = small_image_dataset();
        const xt::xarray<float> stored = dataset.inputs().values<float>();
        data::DataLoaderOptions options{.batch_size = 8, .seed = 2};
        data::DataLoader plain(dataset, options);
        options.augment =
            data::compose({data::RandomCrop{.padding = 1}, data::RandomHorizontalFlip{}});
        data::DataLoader augmented(dataset, options);

        // Same examples in the same order, with changed inputs.
        auto plain_batch = plain.begin();
        auto augmented_batch = augmented.begin();
        for (; augmented_batch != augmented.end(); ++plain_batch, ++augmented_batch) {
            CHECK(augmented_batch->targets.values<std::int64_t>() ==
                  plain_batch->targets.values<std::int64_t>());
            CHECK(augmented_batch->inputs.shape() == plain_batch->inputs.shape());
            CHECK(augmented_batch->inputs.values<float>() != plain_batch->inputs.values<float>());
        }
        CHECK(dataset.inputs().values<float>() == stored);
        CHECK(augmented.dataset().inputs().values<float>() == stored);
    }

    TEST_CASE("loader augmentation is seeded") {
        const data::TensorDataset dataset = small_image_dataset();
        const data::Augmentation augment = data::RandomShift{.max_shift = 2};
        data::DataLoader first(dataset, {.batch_size = 8, .seed = 3, .augment = augment});
        data::DataLoader second(dataset, {.batch_size = 8, .seed = 3, .augment = augment});
        data::DataLoader other(dataset, {.batch_size = 8, .seed = 4, .augment = augment});
        const auto epoch1 = epoch_inputs(first);
        const auto epoch2 = epoch_inputs(first);
        CHECK(epoch1 != epoch2);
        CHECK(epoch_inputs(second) == epoch1);
        CHECK(epoch_inputs(second) == epoch2);
        CHECK(epoch_inputs(other) != epoch1);

        // Without shuffling, the only randomness is the augmentation's.
        data::DataLoader ordered(
            dataset, {.batch_size = 8, .shuffle = false, .seed = 3, .augment = augment});
        data::DataLoader ordered_other(
            dataset, {.batch_size = 8, .shuffle = false, .seed = 4, .augment = augment});
        CHECK(epoch_inputs(ordered) != epoch_inputs(ordered_other));
    }

    TEST_CASE("loader resumes augmented epochs") {
        const data::TensorDataset dataset = small_image_dataset();
        const data::DataLoaderOptions options{
            .batch_size = 8, .seed = 5, .augment = data::RandomShift{}};
        data::DataLoader loader(dataset, options);
        epoch_inputs(loader);
        const Generator::State shuffle_state = loader.generator().state();
        const Generator::State augment_state = loader.augment_generator().state();
        const auto expected = epoch_inputs(loader);

        data::DataLoader resumed(dataset,
                                 {.batch_size = 8, .seed = 77, .augment = data::RandomShift{}});
        resumed.generator().set_state(shuffle_state);
        resumed.augment_generator().set_state(augment_state);
        CHECK(epoch_inputs(resumed) == expected);
    }

    TEST_CASE("loader rejects an augmentation that drops examples") {
        const data::Augmentation drop_one = [](const Tensor& inputs, Generator&) {
            return slice(inputs, 0, 1, static_cast<std::int64_t>(inputs.shape()[0]));
        };
        data::DataLoader loader(small_image_dataset(), {.batch_size = 8, .augment = drop_one});
        CHECK_THROWS_WITH_AS(
            loader.begin(),
            doctest::Contains("DataLoader: the augmentation turned a batch of shape "
                              "(8, 1, 6, 6) into shape (7, 1, 6, 6)"),
            value_error);
    }

    TEST_CASE("augmentation usage snippet") {
        // Random pixels stand in for Fashion-MNIST's flat (n, 784) inputs.
        xt::xarray<std::int64_t> labels = xt::zeros<std::int64_t>({300});
        const data::TensorDataset train(random_images({300, 784}, 14), Tensor(labels));
        data::DataLoader loader = make_augmented_loader(train);
        CHECK(loader.size() == 3);
        for (const data::Batch& batch : loader) {
            CHECK(batch.inputs.shape()[1] == 1);
            CHECK(batch.inputs.shape()[2] == 28);
            CHECK(batch.inputs.shape()[3] == 28);
        }
    }

    TEST_CASE("augmentation called directly") {
        const Tensor images = random_images({4, 1, 6, 6}, 16);
        // The snippet of docs/data-augmentation.md.
        xgrad::Generator generator(7);
        const xgrad::Tensor moved = xgrad::data::RandomShift{.max_shift = 2}(images, generator);
        CHECK(moved.shape() == images.shape());
    }

    TEST_CASE("augmentation errors") {
        Generator generator(15);
        CHECK_THROWS_WITH_AS(
            data::RandomCrop{.padding = 2}(zeros({4, 784}), generator),
            doctest::Contains("RandomCrop: expected images of shape (N, H, W) or "
                              "(N, C, H, W), got shape (4, 784); reshape flat inputs"),
            shape_error);

        const data::RandomCrop too_tall{.height = 7, .width = 3};
        CHECK_THROWS_WITH_AS(
            too_tall(zeros({2, 5, 5}), generator),
            doctest::Contains("RandomCrop: a 7 x 3 window does not fit in images of "
                              "shape (2, 5, 5) padded by 0 to 5 x 5"),
            shape_error);

        const std::size_t huge = std::numeric_limits<std::size_t>::max() / 2;
        CHECK_THROWS_WITH_AS(data::RandomCrop{.padding = huge}(zeros({2, 5, 5}), generator),
                             doctest::Contains(("RandomCrop: padding is " + std::to_string(huge) +
                                                ", larger than the limit")
                                                   .c_str()),
                             value_error);
        CHECK_THROWS_WITH_AS(data::RandomShift{.max_shift = huge}(zeros({2, 5, 5}), generator),
                             doctest::Contains("RandomShift: max_shift is"), value_error);

        CHECK_THROWS_WITH_AS(
            data::RandomHorizontalFlip{.p = 1.5}(zeros({2, 5, 5}), generator),
            doctest::Contains("RandomHorizontalFlip: p must be in [0, 1], got 1.5"), value_error);

        Tensor trained = zeros({2, 5, 5});
        trained.requires_grad_(true);
        CHECK_THROWS_WITH_AS(data::RandomShift{}(trained, generator),
                             doctest::Contains("RandomShift: the images require grad"),
                             value_error);

        CHECK_THROWS_WITH_AS(data::translate(Tensor(), 1, 1),
                             doctest::Contains("translate: the images are an undefined tensor"),
                             value_error);
        CHECK_THROWS_WITH_AS(data::compose({data::RandomShift{}, data::Augmentation()}),
                             doctest::Contains("compose: step 1 is an empty Augmentation"),
                             value_error);
    }
}
