// Cross-validation and single fits on small synthetic problems. The snippet
// marked below appears in docs/model-selection.md; change both together.

#include <cmath>
#include <set>
#include <stdexcept>
#include <thread>

#include "select_testing.hpp"

using namespace xgrad;
using testing::same_bits;

namespace {

data::TensorDataset ones_to_zeros() {
    return data::TensorDataset(ones({4, 1}), zeros({4, 1}));
}

std::vector<double> validation_losses(const std::vector<select::EpochRecord>& history) {
    std::vector<double> losses;
    for (const select::EpochRecord& record : history) {
        losses.push_back(record.validation.loss);
    }
    return losses;
}

void check_same_folds(const select::CrossValidationResult& a,
                      const select::CrossValidationResult& b) {
    REQUIRE(a.folds.size() == b.folds.size());
    for (std::size_t i = 0; i < a.folds.size(); ++i) {
        INFO("fold " << i);
        CHECK(same_bits(a.folds[i].validation.loss, b.folds[i].validation.loss));
        CHECK(same_bits(a.folds[i].validation.accuracy, b.folds[i].validation.accuracy));
        REQUIRE(a.folds[i].history.size() == b.folds[i].history.size());
        for (std::size_t e = 0; e < a.folds[i].history.size(); ++e) {
            CHECK(same_bits(a.folds[i].history[e].train_loss, b.folds[i].history[e].train_loss));
        }
    }
    CHECK(same_bits(a.mean_loss, b.mean_loss));
    CHECK(same_bits(a.std_accuracy, b.std_accuracy));
}

}  // namespace

TEST_SUITE("cross validate") {
    TEST_CASE("classifier on three blobs") {
        const data::TensorDataset train = testing::blobs(30, 1);

        // --- snippet: cross_validate ---
        // A linear classifier of 2-D points into 3 classes, trained by SGD.
        select::ModelFactory factory = [](const select::Params& params, std::uint64_t seed) {
            Generator generator(seed);  // every random draw of the model comes from the seed
            auto model = std::make_shared<nn::Linear>(2, 3, generator);
            auto optimizer = std::make_unique<optim::SGD>(
                model->parameters(), optim::SGDOptions{.lr = params.get_double("lr")});
            return select::TrainingSetup{
                .model = model,
                .optimizer = std::move(optimizer),
                .batch_size = static_cast<std::size_t>(params.get_int("batch_size")),
                .epochs = 10};
        };

        const select::CrossValidationResult cv =
            select::cross_validate(factory, {{"lr", 0.1}, {"batch_size", 8}}, train,
                                   select::StratifiedKFold({.k = 3, .seed = 1}), {.seed = 1});
        // cv.mean_loss is the CV value: the mean over folds of the validation loss.
        // --- end snippet ---

        REQUIRE(cv.folds.size() == 3);
        CHECK(cv.task == select::Task::classification);
        for (const select::FoldResult& fold : cv.folds) {
            CHECK(fold.train_size == 60);
            CHECK(fold.validation_size == 30);
            CHECK(fold.history.size() == 10);
            CHECK(fold.best_epoch == 10);
            CHECK(same_bits(fold.validation.loss, fold.history.back().validation.loss));
            CHECK(fold.validation.accuracy >= 0.9);
        }
        const double mean = (cv.folds[0].validation.loss + cv.folds[1].validation.loss +
                             cv.folds[2].validation.loss) /
                            3.0;
        CHECK(cv.mean_loss == doctest::Approx(mean).epsilon(1e-15));
        double squares = 0.0;
        for (const select::FoldResult& fold : cv.folds) {
            squares += (fold.validation.accuracy - cv.mean_accuracy) *
                       (fold.validation.accuracy - cv.mean_accuracy);
        }
        CHECK(cv.std_accuracy == doctest::Approx(std::sqrt(squares / 3.0)));
        CHECK(cv.mean_accuracy >= 0.9);
        CHECK(cv.mean_best_epoch == 10.0);
        // Training lowered the loss: cross-entropy starts near log 3 = 1.1.
        CHECK(cv.mean_loss < 0.4);
    }

    TEST_CASE("regression measures loss only") {
        const select::CrossValidationResult cv = select::cross_validate(
            testing::linear_factory(1, 1), {{"lr", 0.1}}, testing::line(60, 2),
            select::KFold({.k = 3, .seed = 2}), {.task = select::Task::regression, .seed = 3});
        REQUIRE(cv.folds.size() == 3);
        // The noise has variance 0.0025; the fit gets close to it.
        CHECK(cv.mean_loss < 0.01);
        CHECK(std::isnan(cv.mean_accuracy));
        CHECK(std::isnan(cv.folds[0].validation.accuracy));
    }

    TEST_CASE("same results on one and two threads") {
        const data::TensorDataset train = testing::blobs(20, 4);
        const select::StratifiedKFold splitter({.k = 4, .seed = 5});
        const select::Params params{{"lr", 0.05}, {"epochs", 3}};
        const auto one_thread = select::cross_validate(testing::linear_factory(2, 3), params, train,
                                                       splitter, {.seed = 6, .threads = 1});
        const auto two_threads = select::cross_validate(testing::linear_factory(2, 3), params,
                                                        train, splitter, {.seed = 6, .threads = 2});
        const auto again = select::cross_validate(testing::linear_factory(2, 3), params, train,
                                                  splitter, {.seed = 6, .threads = 2});
        check_same_folds(one_thread, two_threads);
        check_same_folds(two_threads, again);
        const auto other_seed = select::cross_validate(testing::linear_factory(2, 3), params, train,
                                                       splitter, {.seed = 7});
        CHECK_FALSE(same_bits(one_thread.folds[0].history[0].train_loss,
                              other_seed.folds[0].history[0].train_loss));
    }

    TEST_CASE("default generator is reseeded per fold") {
        // This factory draws the weights from the thread's default generator.
        const select::ModelFactory factory = [](const select::Params&, std::uint64_t) {
            auto model = std::make_shared<nn::Linear>(2, 3);
            auto optimizer =
                std::make_unique<optim::SGD>(model->parameters(), optim::SGDOptions{.lr = 0.1});
            return select::TrainingSetup{
                .model = model, .optimizer = std::move(optimizer), .epochs = 2};
        };
        const data::TensorDataset train = testing::blobs(10, 8);
        manual_seed(123);
        const Generator::State before = default_generator().state();
        const auto one_thread =
            select::cross_validate(factory, {}, train, select::KFold({.k = 3}), {.threads = 1});
        const auto two_threads =
            select::cross_validate(factory, {}, train, select::KFold({.k = 3}), {.threads = 2});
        check_same_folds(one_thread, two_threads);
        // The folds ran on other threads, so this thread's generator is untouched.
        CHECK(default_generator().state() == before);
    }

    TEST_CASE("progress arrives on the calling thread") {
        std::vector<select::FitProgress> events;
        const std::thread::id caller = std::this_thread::get_id();
        bool on_caller = true;
        select::CrossValidateOptions options{.threads = 2};
        options.on_progress = [&](const select::FitProgress& progress) {
            events.push_back(progress);
            on_caller = on_caller && std::this_thread::get_id() == caller;
        };
        const auto cv =
            select::cross_validate(testing::linear_factory(2, 3), {{"lr", 0.1}, {"epochs", 2}},
                                   testing::blobs(10, 3), select::KFold({.k = 3}), options);
        REQUIRE(events.size() == 3);
        CHECK(on_caller);
        std::set<std::size_t> folds;
        for (std::size_t i = 0; i < events.size(); ++i) {
            CHECK(events[i].completed == i + 1);
            CHECK(events[i].total == 3);
            CHECK(events[i].candidate == 0);
            CHECK(events[i].epochs == 2);
            REQUIRE(events[i].fold.has_value());
            folds.insert(*events[i].fold);
            CHECK(same_bits(events[i].validation.loss, cv.folds[*events[i].fold].validation.loss));
        }
        CHECK(folds == std::set<std::size_t>{0, 1, 2});
        CHECK(events.back().examples == 3 * 20 * 2);  // 3 folds, 20 training points, 2 epochs
    }

    TEST_CASE("dataset with history is detached") {
        Tensor x = testing::blobs(10, 2).inputs().detach();
        x.requires_grad_(true);
        const data::TensorDataset recorded(x * 1.0, testing::blobs(10, 2).targets());
        REQUIRE(recorded.inputs().requires_grad());
        const auto cv =
            select::cross_validate(testing::linear_factory(2, 3), {{"lr", 0.1}, {"epochs", 1}},
                                   recorded, select::KFold({.k = 2}), {.threads = 2});
        CHECK(cv.folds.size() == 2);
    }

    TEST_CASE("fold errors propagate") {
        const data::TensorDataset train = testing::blobs(10, 1);
        // Folds 1 and 2 fail; the error of the lowest failed fold propagates.
        const select::ModelFactory failing = [](const select::Params& params, std::uint64_t seed) {
            if (seed == select::derive_seed(0, 1)) {
                throw std::runtime_error("fold 1 failed");
            }
            if (seed == select::derive_seed(0, 2)) {
                throw std::runtime_error("fold 2 failed");
            }
            return testing::linear_factory(2, 3)(params, seed);
        };
        for (const std::size_t threads : {1, 2}) {
            INFO("threads = " << threads);
            CHECK_THROWS_WITH_AS(
                select::cross_validate(failing, {{"lr", 0.1}}, train, select::KFold({.k = 3}),
                                       {.threads = threads}),
                "fold 1 failed", std::runtime_error);
        }
    }

    TEST_CASE("fit rejects incomplete setups") {
        const data::TensorDataset train = testing::blobs(4, 1);
        const select::ModelFactory no_model = [](const select::Params&, std::uint64_t) {
            return select::TrainingSetup{};
        };
        CHECK_THROWS_WITH_AS(
            select::fit(no_model, {{"lr", 0.1}}, 0, train, {}),
            doctest::Contains("fit: the factory's setup for {lr=0.1} has no model"), value_error);
        CHECK_THROWS_WITH_AS(select::fit(testing::linear_factory(2, 3),
                                         {{"lr", 0.1}, {"batch_size", 0}}, 0, train, {}),
                             doctest::Contains("has batch_size 0"), value_error);
        CHECK_THROWS_WITH_AS(select::fit(testing::linear_factory(2, 3), {{"lr", 0.1}}, 0, train, {},
                                         {.early_stopping = select::EarlyStopping{}}),
                             doctest::Contains("fit: early stopping needs validation examples"),
                             value_error);
        CHECK_THROWS_WITH_AS(
            select::fit(testing::linear_factory(2, 3), {{"lr", 0.1}}, 0, train, train,
                        {.early_stopping = select::EarlyStopping{.patience = 0}}),
            doctest::Contains("patience of at least 1"), value_error);
    }

    TEST_CASE("fit without validation trains every epoch") {
        const select::FitResult fitted =
            select::fit(testing::linear_factory(1, 1), {{"lr", 0.1}}, 5, testing::line(40, 1), {},
                        {.task = select::Task::regression, .epochs = 30});
        CHECK(fitted.history.size() == 30);
        CHECK(fitted.history[0].examples == 40);
        CHECK(fitted.best_epoch == 30);
        CHECK(std::isnan(fitted.validation.loss));
        CHECK(fitted.history.back().train_loss < 0.01);
        auto& model = dynamic_cast<nn::Linear&>(*fitted.setup.model);
        CHECK(model.weight.item() == doctest::Approx(2.0).epsilon(0.05));
        CHECK(model.bias.item() == doctest::Approx(1.0).epsilon(0.05));
    }

    TEST_CASE("fit with drop_last skips the short batch") {
        // 40 examples in batches of 16: two full batches, and 8 left over.
        const select::ModelFactory dropping = [](const select::Params& params, std::uint64_t seed) {
            select::TrainingSetup setup = testing::linear_factory(1, 1)(params, seed);
            setup.drop_last = true;
            return setup;
        };
        const select::FitResult fitted =
            select::fit(dropping, {{"lr", 0.1}, {"batch_size", 16}, {"epochs", 3}}, 5,
                        testing::line(40, 1), {}, {.task = select::Task::regression});
        REQUIRE(fitted.history.size() == 3);
        CHECK(fitted.history[0].examples == 32);
        CHECK(fitted.history[2].examples == 32);

        CHECK_THROWS_WITH_AS(
            select::fit(dropping, {{"lr", 0.1}, {"batch_size", 64}}, 5, testing::line(40, 1), {},
                        {.task = select::Task::regression}),
            doctest::Contains("has drop_last with batch_size 64, which leaves no batch of 40 "
                              "training examples"),
            value_error);
    }

    TEST_CASE("early stopping restores the best epoch") {
        const data::TensorDataset data = ones_to_zeros();
        const select::FitOptions options{.task = select::Task::regression,
                                         .early_stopping = select::EarlyStopping{.patience = 2}};
        const select::FitResult fitted =
            select::fit(testing::scripted_factory(testing::kScript), {}, 0, data, data, options);
        // Losses 9, 4, 1, 2.25, 4: two epochs without improvement after epoch 3.
        CHECK(validation_losses(fitted.history) == std::vector<double>{9.0, 4.0, 1.0, 2.25, 4.0});
        CHECK(fitted.best_epoch == 3);
        CHECK(fitted.validation.loss == 1.0);
        const auto& model = dynamic_cast<const nn::Linear&>(*fitted.setup.model);
        CHECK(model.weight.item() == 1.0);
    }

    TEST_CASE("early stopping patience and min delta") {
        const data::TensorDataset data = ones_to_zeros();
        SUBCASE("longer patience reaches the later minimum") {
            const auto fitted =
                select::fit(testing::scripted_factory(testing::kScript), {}, 0, data, data,
                            {.task = select::Task::regression,
                             .early_stopping = select::EarlyStopping{.patience = 3}});
            // Epoch 7 reaches 0.0625, and epochs 8 to 10 only equal it.
            CHECK(fitted.history.size() == 10);
            CHECK(fitted.best_epoch == 7);
            CHECK(fitted.validation.loss == 0.0625);
        }
        SUBCASE("min delta ignores small gains") {
            const auto fitted = select::fit(
                testing::scripted_factory(testing::kScript), {}, 0, data, data,
                {.task = select::Task::regression,
                 .early_stopping = select::EarlyStopping{.patience = 2, .min_delta = 8.5}});
            // 4 and 1 are not below 9 - 8.5.
            CHECK(fitted.history.size() == 3);
            CHECK(fitted.best_epoch == 1);
            const auto& model = dynamic_cast<const nn::Linear&>(*fitted.setup.model);
            CHECK(model.weight.item() == 3.0);
        }
        SUBCASE("without early stopping the last epoch counts") {
            const auto fitted = select::fit(testing::scripted_factory(testing::kScript), {}, 0,
                                            data, data, {.task = select::Task::regression});
            CHECK(fitted.history.size() == 10);
            CHECK(fitted.best_epoch == 10);
            CHECK(fitted.validation.loss == 0.0625);
        }
    }

    TEST_CASE("early stopping in cross validation") {
        const data::TensorDataset data(ones({6, 1}), zeros({6, 1}));
        const auto cv = select::cross_validate(
            testing::scripted_factory(testing::kScript), {}, data, select::KFold({.k = 3}),
            {.task = select::Task::regression,
             .early_stopping = select::EarlyStopping{.patience = 2}});
        for (const select::FoldResult& fold : cv.folds) {
            CHECK(fold.best_epoch == 3);
            CHECK(fold.history.size() == 5);
        }
        CHECK(cv.mean_loss == 1.0);
        CHECK(cv.std_loss == 0.0);
        CHECK(cv.mean_best_epoch == 3.0);
    }

    TEST_CASE("evaluate checks classification targets") {
        nn::Linear model(2, 3);
        const data::TensorDataset regression_targets(zeros({4, 2}), zeros({4}));
        CHECK_THROWS_WITH_AS(
            select::evaluate(model, regression_targets, select::Task::classification),
            doctest::Contains("evaluate: accuracy needs outputs of shape (n, classes)"),
            value_error);
        const select::Evaluation empty =
            select::evaluate(model, data::TensorDataset{}, select::Task::classification);
        CHECK(std::isnan(empty.loss));
        CHECK(model.is_training());
    }

    TEST_CASE("evaluate keeps the model's mode") {
        nn::Linear model(2, 3);
        const data::TensorDataset dataset(zeros({4, 2}), Tensor(xt::xarray<std::int64_t>{0, 1, 2, 0}));
        model.eval();
        select::evaluate(model, dataset, select::Task::classification);
        CHECK_FALSE(model.is_training());
        model.train();
        select::evaluate(model, dataset, select::Task::classification);
        CHECK(model.is_training());
    }

    TEST_CASE("derive seed separates streams") {
        CHECK(select::derive_seed(0, 0) != select::derive_seed(0, 1));
        CHECK(select::derive_seed(0, 1) != select::derive_seed(1, 0));
        CHECK(select::derive_seed(5, 2) == select::derive_seed(5, 2));
    }
}
