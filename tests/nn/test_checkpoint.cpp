#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "testing.hpp"

using namespace xgrad;

namespace {

struct ScratchDir {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("xgrad-checkpoint-test-" + std::to_string(::getpid()));
    ScratchDir() { std::filesystem::create_directories(path); }
    ~ScratchDir() { std::filesystem::remove_all(path); }
};

std::shared_ptr<nn::Sequential> make_model(std::uint64_t seed) {
    Generator generator(seed);
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Linear>(6, 5, generator), std::make_shared<nn::Tanh>(),
        std::make_shared<nn::Linear>(5, 3, generator)});
}

data::TensorDataset make_data() {
    Generator generator(99);
    const Tensor inputs = uniform({64, 6}, -1, 1, generator);
    xt::xarray<std::int64_t> labels(Shape{64});
    for (std::size_t i = 0; i < 64; ++i) {
        labels(i) = static_cast<std::int64_t>(generator.below(3));
    }
    return data::TensorDataset(inputs, Tensor(labels));
}

void train_epoch(nn::Module& model, optim::Optimizer& optimizer, data::DataLoader& loader) {
    nn::CrossEntropyLoss criterion;
    for (const data::Batch& batch : loader) {
        const Tensor loss = criterion(model(batch.inputs), batch.targets);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
    }
}

bool bitwise_equal(const nn::Module& a, const nn::Module& b) {
    const auto left = a.state_dict();
    const auto right = b.state_dict();
    for (std::size_t i = 0; i < left.size(); ++i) {
        if (left[i].second.values<float>() != right[i].second.values<float>()) {
            return false;
        }
    }
    return left.size() == right.size();
}

}  // namespace

TEST_SUITE("checkpoint") {
    TEST_CASE("save and load give bitwise equal predictions") {
        ScratchDir dir;
        auto model = make_model(1);
        auto restored = make_model(2);
        const Tensor x = make_data().inputs();
        save_model(*model, dir.path / "model.npz");
        load_model(*restored, dir.path / "model.npz");
        CHECK((*restored)(x).values<float>() == (*model)(x).values<float>());
    }

    TEST_CASE("numpy reads a model checkpoint") {
        ScratchDir dir;
        auto model = make_model(1);
        const auto path = dir.path / "model.npz";
        save_model(*model, path);
        const std::string script =
            "import numpy, sys\n"
            "d = numpy.load(sys.argv[1])\n"
            "assert list(d.keys()) == ['0.weight', '0.bias', '2.weight', '2.bias'], list(d.keys())\n"
            "assert d['0.weight'].shape == (5, 6) and d['0.weight'].dtype == numpy.float32\n"
            "print(repr(float(d['2.bias'][1])))\n";
        const std::string command = "/usr/bin/python3 -c \"" + script + "\" " + path.string() +
                                    " > " + (dir.path / "out.txt").string();
        INFO("needs /usr/bin/python3 with numpy; scripts/setup installs python3-numpy");
        REQUIRE(std::system(command.c_str()) == 0);
        std::ifstream out(dir.path / "out.txt");
        double value = 0.0;
        out >> value;
        CHECK(static_cast<float>(value) == model->state_dict()[3].second.values<float>()(1));
    }

    TEST_CASE("mismatched file leaves the model unchanged") {
        ScratchDir dir;
        auto model = make_model(1);
        Generator generator(3);
        nn::Sequential other{std::make_shared<nn::Linear>(6, 4, generator)};
        save_model(other, dir.path / "other.npz");
        const auto before = model->state_dict()[0].second.values<float>();
        try {
            load_model(*model, dir.path / "other.npz");
            FAIL("load_model accepted a checkpoint of another model");
        } catch (const value_error& error) {
            const std::string message = error.what();
            CHECK(message.find("other.npz' does not match the model Sequential") != std::string::npos);
            CHECK(message.find("'0.weight' is float32 (4, 6) in the state but float32 (5, 6)") !=
                  std::string::npos);
            CHECK(message.find("missing '2.weight'") != std::string::npos);
        }
        CHECK(model->state_dict()[0].second.values<float>() == before);
        CHECK_THROWS_AS(load_model(*model, dir.path / "missing.npz"), io_error);
    }

    TEST_CASE("resuming gives bitwise the same parameters") {
        ScratchDir dir;
        const data::TensorDataset dataset = make_data();
        const data::DataLoaderOptions loader_options{.batch_size = 8, .seed = 4};

        // Uninterrupted: three epochs.
        auto straight = make_model(7);
        optim::Adam straight_optimizer(straight->parameters(), {.lr = 0.01});
        data::DataLoader straight_loader(dataset, loader_options);
        for (int epoch = 0; epoch < 3; ++epoch) {
            train_epoch(*straight, straight_optimizer, straight_loader);
        }

        // Interrupted after two epochs, saved, and resumed in fresh objects.
        {
            auto first = make_model(7);
            optim::Adam optimizer(first->parameters(), {.lr = 0.01});
            data::DataLoader loader(dataset, loader_options);
            for (int epoch = 0; epoch < 2; ++epoch) {
                train_epoch(*first, optimizer, loader);
            }
            save_checkpoint(dir.path / "checkpoint.npz", *first, optimizer,
                            {{"loader_generator", generator_state(loader.generator())}});
        }
        auto resumed = make_model(123);
        optim::Adam optimizer(resumed->parameters(), {.lr = 0.5});
        data::DataLoader loader(dataset, {.batch_size = 8, .seed = 999});
        const auto extra = load_checkpoint(dir.path / "checkpoint.npz", *resumed, optimizer);
        REQUIRE(extra.size() == 1);
        CHECK(extra[0].first == "loader_generator");
        set_generator_state(loader.generator(), extra[0].second);
        CHECK(optimizer.param_groups()[0].lr == 0.01);
        train_epoch(*resumed, optimizer, loader);

        CHECK(bitwise_equal(*resumed, *straight));
    }

    TEST_CASE("checkpoint of another optimizer changes nothing") {
        ScratchDir dir;
        auto model = make_model(1);
        optim::SGD sgd(model->parameters(), {.lr = 0.1, .momentum = 0.9});
        const data::TensorDataset dataset = make_data();
        data::DataLoader loader(dataset, {.batch_size = 16});
        train_epoch(*model, sgd, loader);
        save_checkpoint(dir.path / "sgd.npz", *model, sgd);

        auto target = make_model(2);
        optim::Adam adam(target->parameters());
        const auto before = target->state_dict()[0].second.values<float>();
        CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "sgd.npz", *target, adam),
                             doctest::Contains("does not match the optimizer"), value_error);
        CHECK(target->state_dict()[0].second.values<float>() == before);
        CHECK(adam.state_dict().size() == adam.param_groups().size() * 2);
    }
}
