// Grid and random search on small synthetic problems, and the CSV table. The
// snippets marked below appear in docs/model-selection.md; change both
// together.

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "select_testing.hpp"

using namespace xgrad;
using testing::same_bits;
using Ints = std::vector<std::int64_t>;

namespace {

// A classifier of 2-D points with hidden ReLU layers of the widths in
// "hidden", trained by the optimizer named in "optimizer" (sgd or adam).
select::TrainingSetup mlp_setup(const select::Params& params, std::uint64_t seed) {
    Generator generator(seed);
    auto model = std::make_shared<nn::Sequential>();
    std::size_t width = 2;
    for (const std::int64_t hidden : params.get_ints("hidden")) {
        model->push_back(
            std::make_shared<nn::Linear>(width, static_cast<std::size_t>(hidden), generator));
        model->push_back(std::make_shared<nn::ReLU>());
        width = static_cast<std::size_t>(hidden);
    }
    model->push_back(std::make_shared<nn::Linear>(width, 3, generator));

    const double lr = params.get_double("lr");
    std::unique_ptr<optim::Optimizer> optimizer;
    if (params.get_string("optimizer") == "adam") {
        optimizer =
            std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions{.lr = lr});
    } else {
        optimizer = std::make_unique<optim::SGD>(model->parameters(), optim::SGDOptions{.lr = lr});
    }
    return {.model = model, .optimizer = std::move(optimizer), .batch_size = 16, .epochs = 4};
}

// Splits one CSV line into fields, undoing RFC 4180 quoting.
std::vector<std::string> parse_csv_line(const std::string& line) {
    std::vector<std::string> fields(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
            fields.back() += '"';
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (c == ',' && !quoted) {
            fields.emplace_back();
        } else {
            fields.back() += c;
        }
    }
    return fields;
}

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        rows.push_back(parse_csv_line(line));
    }
    return rows;
}

double parse_number(const std::string& text) {
    return text == "nan" ? std::numeric_limits<double>::quiet_NaN() : std::stod(text);
}

void check_same_tables(const select::SearchResult& a, const select::SearchResult& b) {
    CHECK(select::to_csv(a) == select::to_csv(b));
    REQUIRE(a.candidates.size() == b.candidates.size());
    for (std::size_t c = 0; c < a.candidates.size(); ++c) {
        const auto& folds_a = a.candidates[c].cross_validation.folds;
        const auto& folds_b = b.candidates[c].cross_validation.folds;
        CHECK(a.candidates[c].index == b.candidates[c].index);
        REQUIRE(folds_a.size() == folds_b.size());
        for (std::size_t f = 0; f < folds_a.size(); ++f) {
            for (std::size_t e = 0; e < folds_a[f].history.size(); ++e) {
                CHECK(
                    same_bits(folds_a[f].history[e].train_loss, folds_b[f].history[e].train_loss));
                CHECK(same_bits(folds_a[f].history[e].validation.loss,
                                folds_b[f].history[e].validation.loss));
            }
        }
    }
}

}  // namespace

TEST_SUITE("search") {
    TEST_CASE("grid search finds the best learning rate") {
        const data::TensorDataset train = testing::line(64, 3);

        // --- snippet: grid_search ---
        // Plain SGD on y = 2 x + 1 for 5 epochs of batches of 16: a learning
        // rate of 0.3 converges, 0.01 and 0.001 are too slow, 3 diverges.
        const select::ParamGrid grid = {
            {"lr", {0.001, 0.01, 0.3, 3.0}}, {"batch_size", {16}}, {"epochs", {5}}};
        const select::SearchResult result = select::grid_search(
            testing::linear_factory(1, 1), grid, train, select::KFold({.k = 4, .seed = 1}),
            {.cross_validation = {.task = select::Task::regression, .seed = 1, .threads = 2}});

        const select::Candidate& best = result.best();  // rank 1: the lowest mean validation loss
        const auto& model = dynamic_cast<const nn::Linear&>(*result.refit->setup.model);
        // --- end snippet ---

        CHECK(best.params.get_double("lr") == 0.3);
        CHECK(best.rank == 1);
        CHECK(best.index == 2);
        REQUIRE(result.candidates.size() == 4);
        std::vector<double> order;
        for (const select::Candidate& candidate : result.candidates) {
            order.push_back(candidate.params.get_double("lr"));
        }
        CHECK(order == std::vector<double>{0.3, 0.01, 0.001, 3.0});
        CHECK(best.cross_validation.mean_loss < 0.01);
        CHECK(result.param_names == std::vector<std::string>{"lr", "batch_size", "epochs"});
        CHECK(result.fold_count == 4);

        // The refit trained lr = 0.3 on all 64 points for the same 5 epochs.
        REQUIRE(result.refit.has_value());
        CHECK(result.refit->history.size() == 5);
        CHECK(std::isnan(result.refit->validation.loss));
        CHECK(model.weight.item() == doctest::Approx(2.0).epsilon(0.05));
        CHECK(model.bias.item() == doctest::Approx(1.0).epsilon(0.05));
    }

    TEST_CASE("same table on one and two threads") {
        const data::TensorDataset train = testing::blobs(20, 7);
        const select::ParamGrid grid = {
            {"optimizer", {"sgd", "adam"}}, {"hidden", {Ints{}, Ints{8, 4}}}, {"lr", {0.05}}};
        const select::StratifiedKFold splitter({.k = 3, .seed = 2});
        select::SearchResult one_thread = select::grid_search(
            mlp_setup, grid, train, splitter, {.cross_validation = {.seed = 5, .threads = 1}});
        select::SearchResult two_threads = select::grid_search(
            mlp_setup, grid, train, splitter, {.cross_validation = {.seed = 5, .threads = 2}});
        check_same_tables(one_thread, two_threads);
        REQUIRE(one_thread.refit.has_value());
        REQUIRE(two_threads.refit.has_value());
        const nn::NamedTensors weights_one = one_thread.refit->setup.model->state_dict();
        const nn::NamedTensors weights_two = two_threads.refit->setup.model->state_dict();
        REQUIRE(weights_one.size() == weights_two.size());
        for (std::size_t i = 0; i < weights_one.size(); ++i) {
            CHECK(weights_one[i].second.values<float>() == weights_two[i].second.values<float>());
        }

        const select::SearchResult other_seed = select::grid_search(
            mlp_setup, grid, train, splitter, {.cross_validation = {.seed = 6, .threads = 2}});
        CHECK(select::to_csv(other_seed) != select::to_csv(one_thread));
    }

    TEST_CASE("random search samples log uniform rates") {
        const data::TensorDataset train = testing::line(48, 5);

        // --- snippet: random_search ---
        const select::ParamDistributions space = {
            {"lr", select::Distribution::log_uniform(1e-3, 1.0)},  // a scale: uniform in log lr
            {"batch_size", select::Distribution::int_uniform(4, 16)},
            {"epochs", select::Distribution::choice({3})},
        };
        const select::SearchOptions options{
            .cross_validation = {.task = select::Task::regression, .seed = 2, .threads = 2},
            .refit = false};
        const select::SearchResult result =
            select::random_search(testing::linear_factory(1, 1), space, 6, train,
                                  select::KFold({.k = 3, .seed = 2}), options);
        // --- end snippet ---

        REQUIRE(result.candidates.size() == 6);
        CHECK_FALSE(result.refit.has_value());
        const std::vector<select::Params> drawn = select::sample_params(space, 6, 2);
        for (const select::Candidate& candidate : result.candidates) {
            CHECK(candidate.params == drawn[candidate.index]);
        }
        for (std::size_t i = 1; i < result.candidates.size(); ++i) {
            CHECK(result.candidates[i].rank == i + 1);
            CHECK(result.candidates[i - 1].cross_validation.mean_loss <=
                  result.candidates[i].cross_validation.mean_loss);
        }
        const select::SearchResult single = select::random_search(
            testing::linear_factory(1, 1), space, 6, train, select::KFold({.k = 3, .seed = 2}),
            {.cross_validation = {.task = select::Task::regression, .seed = 2, .threads = 1},
             .refit = false});
        check_same_tables(result, single);
    }

    TEST_CASE("csv lists the table") {
        const data::TensorDataset train = testing::blobs(12, 3);
        const select::ParamGrid grid = {
            {"optimizer", {"sgd", "adam"}}, {"hidden", {Ints{}, Ints{8, 4}}}, {"lr", {0.05}}};
        const select::SearchResult result = select::grid_search(
            mlp_setup, grid, train, select::StratifiedKFold({.k = 2, .seed = 1}),
            {.cross_validation = {.seed = 1, .threads = 2}, .refit = false});

        const std::filesystem::path path =
            std::filesystem::temp_directory_path() /
            ("xgrad-select-test-" + std::to_string(::getpid()) + ".csv");
        select::write_csv(result, path);
        std::ifstream file(path);
        const std::string text((std::istreambuf_iterator<char>(file)),
                               std::istreambuf_iterator<char>());
        std::filesystem::remove(path);
        CHECK(text == select::to_csv(result));

        const auto rows = parse_csv(text);
        REQUIRE(rows.size() == 5);
        CHECK(rows[0] ==
              std::vector<std::string>{"rank", "optimizer", "hidden", "lr", "mean_validation_loss",
                                       "std_validation_loss", "mean_validation_accuracy",
                                       "std_validation_accuracy", "mean_best_epoch",
                                       "fold1_validation_loss", "fold1_validation_accuracy",
                                       "fold2_validation_loss", "fold2_validation_accuracy"});
        for (std::size_t r = 1; r < rows.size(); ++r) {
            INFO("row " << r);
            const select::Candidate& candidate = result.candidates[r - 1];
            const select::CrossValidationResult& cv = candidate.cross_validation;
            REQUIRE(rows[r].size() == rows[0].size());
            CHECK(rows[r][0] == std::to_string(r));
            CHECK(rows[r][1] == candidate.params.get_string("optimizer"));
            CHECK(rows[r][2] == select::format_value(candidate.params.at("hidden")));
            CHECK(parse_number(rows[r][3]) == 0.05);
            CHECK(same_bits(parse_number(rows[r][4]), cv.mean_loss));
            CHECK(same_bits(parse_number(rows[r][5]), cv.std_loss));
            CHECK(same_bits(parse_number(rows[r][6]), cv.mean_accuracy));
            CHECK(same_bits(parse_number(rows[r][7]), cv.std_accuracy));
            CHECK(parse_number(rows[r][8]) == 4.0);
            CHECK(same_bits(parse_number(rows[r][9]), cv.folds[0].validation.loss));
            CHECK(same_bits(parse_number(rows[r][12]), cv.folds[1].validation.accuracy));
        }
        // The list "8,4" is quoted; the empty list is an empty field.
        CHECK(text.find("\"8,4\"") != std::string::npos);
        CHECK(text.find(",,0.05,") != std::string::npos);
    }

    TEST_CASE("regression csv has no accuracy columns") {
        const select::SearchResult result = select::grid_search(
            testing::linear_factory(1, 1), {{"lr", {0.1}}, {"epochs", {2}}}, testing::line(20, 1),
            select::KFold({.k = 2}),
            {.cross_validation = {.task = select::Task::regression}, .refit = false});
        const auto rows = parse_csv(select::to_csv(result));
        CHECK(rows[0] == std::vector<std::string>{
                             "rank", "lr", "epochs", "mean_validation_loss", "std_validation_loss",
                             "mean_best_epoch", "fold1_validation_loss", "fold2_validation_loss"});
    }

    TEST_CASE("diverged candidates rank last") {
        // "poison" = 1 multiplies the loss by NaN, so training produces NaN.
        const select::ModelFactory factory = [](const select::Params& params, std::uint64_t seed) {
            select::TrainingSetup setup = testing::linear_factory(1, 1)(params, seed);
            const double scale = params.get_int("poison") == 1 ? std::nan("") : 1.0;
            setup.loss = [scale](const Tensor& output, const Tensor& targets) {
                return mse_loss(output, targets) * scale;
            };
            return setup;
        };
        const select::SearchResult result = select::grid_search(
            factory, {{"poison", {1, 0}}, {"lr", {0.1}}, {"epochs", {2}}}, testing::line(20, 1),
            select::KFold({.k = 2}), {.cross_validation = {.task = select::Task::regression}});
        CHECK(result.best().params.get_int("poison") == 0);
        CHECK(std::isnan(result.candidates[1].cross_validation.mean_loss));
        CHECK(result.candidates[1].index == 0);
        CHECK(select::to_csv(result).find(",nan,") != std::string::npos);
    }

    TEST_CASE("diverged candidates rank last by accuracy") {
        // A model with NaN weights predicts class 0 everywhere, which scores
        // the share of class 0 (0.7 here): the NaN loss must still rank it last.
        xt::xarray<float> points(Shape{40, 2});
        xt::xarray<std::int64_t> labels(Shape{40});
        Generator generator(4);
        for (std::size_t i = 0; i < 40; ++i) {
            labels(i) = i % 10 < 7 ? 0 : 1;
            points(i, 0) = static_cast<float>(generator.normal() + (labels(i) == 0 ? -2.0 : 2.0));
            points(i, 1) = static_cast<float>(generator.normal());
        }
        const select::SearchResult result = select::grid_search(
            testing::linear_factory(2, 2), {{"lr", {1e300, 1e-6}}, {"epochs", {2}}},
            data::TensorDataset(Tensor(points), Tensor(labels)), select::StratifiedKFold({.k = 2, .seed = 1}),
            {.rank_by = select::RankBy::accuracy, .refit = false});
        CHECK(result.best().params.get_double("lr") == 1e-6);
        CHECK(std::isnan(result.candidates[1].cross_validation.mean_loss));
        CHECK(result.candidates[1].cross_validation.mean_accuracy == doctest::Approx(0.7));
    }

    TEST_CASE("no best when every candidate diverged") {
        const select::SearchResult result = select::grid_search(
            testing::linear_factory(1, 1), {{"lr", {1e300, 1e301}}, {"epochs", {2}}}, testing::line(20, 1),
            select::KFold({.k = 2}), {.cross_validation = {.task = select::Task::regression}});
        CHECK(result.candidates.size() == 2);
        CHECK_FALSE(result.refit.has_value());
        CHECK_THROWS_WITH_AS(result.best(), doctest::Contains("all 2 configurations diverged"), value_error);
    }

    TEST_CASE("anomaly mode reaches the worker threads") {
        AnomalyModeGuard anomaly_mode;
        CHECK_THROWS_AS(select::grid_search(testing::linear_factory(1, 1), {{"lr", {1e300}}, {"epochs", {2}}},
                                            testing::line(20, 1), select::KFold({.k = 2}),
                                            {.cross_validation = {.task = select::Task::regression}}),
                        anomaly_error);
    }

    TEST_CASE("rank by accuracy") {
        const select::ParamGrid grid = {{"lr", {1e-5, 0.1}}, {"epochs", {5}}};
        const select::SearchResult result =
            select::grid_search(testing::linear_factory(2, 3), grid, testing::blobs(20, 2),
                                select::StratifiedKFold({.k = 2, .seed = 3}),
                                {.rank_by = select::RankBy::accuracy, .refit = false});
        CHECK(result.rank_by == select::RankBy::accuracy);
        CHECK(result.best().params.get_double("lr") == 0.1);
        CHECK(result.best().cross_validation.mean_accuracy >
              result.candidates[1].cross_validation.mean_accuracy);
    }

    TEST_CASE("progress counts folds and the refit") {
        std::vector<select::FitProgress> events;
        select::SearchOptions options{
            .cross_validation = {.task = select::Task::regression, .threads = 2}};
        options.cross_validation.on_progress = [&events](const select::FitProgress& progress) {
            events.push_back(progress);
        };
        const select::SearchResult result = select::grid_search(
            testing::linear_factory(1, 1), {{"lr", {0.1, 0.2}}, {"epochs", {2}}},
            testing::line(30, 1), select::KFold({.k = 3}), options);
        REQUIRE(events.size() == 7);
        for (std::size_t i = 0; i < events.size(); ++i) {
            CHECK(events[i].completed == i + 1);
            CHECK(events[i].total == 7);
        }
        for (std::size_t i = 0; i + 1 < events.size(); ++i) {
            CHECK(events[i].fold.has_value());
        }
        CHECK_FALSE(events.back().fold.has_value());
        CHECK(events.back().candidate == result.best().index);
        // Six fold runs on 20 points and the refit on 30, 2 epochs each.
        CHECK(events.back().examples == 6 * 20 * 2 + 30 * 2);
    }

    TEST_CASE("refit after early stopping trains the mean best epoch") {
        const data::TensorDataset data(ones({6, 1}), zeros({6, 1}));
        const select::SearchResult result = select::search(
            testing::scripted_factory(testing::kScript), {select::Params{}}, data,
            select::KFold({.k = 3}),
            {.cross_validation = {.task = select::Task::regression,
                                  .early_stopping = select::EarlyStopping{.patience = 2}}});
        CHECK(result.best().cross_validation.mean_best_epoch == 3.0);
        REQUIRE(result.refit.has_value());
        CHECK(result.refit->history.size() == 3);
    }

    TEST_CASE("search rejects bad requests") {
        const data::TensorDataset train = testing::line(10, 1);
        CHECK_THROWS_WITH_AS(
            select::search(testing::linear_factory(1, 1), {}, train, select::KFold({.k = 2})),
            doctest::Contains("search: there are no configurations to try"), value_error);
        CHECK_THROWS_WITH_AS(
            select::grid_search(testing::linear_factory(1, 1), {{"lr", {0.1}}}, train,
                                select::KFold({.k = 2}),
                                {.cross_validation = {.task = select::Task::regression},
                                 .rank_by = select::RankBy::accuracy}),
            doctest::Contains("search: RankBy::accuracy needs Task::classification"), value_error);
        const select::SearchResult empty;
        CHECK_THROWS_AS(empty.best(), value_error);
    }
}
