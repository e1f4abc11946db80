#include <cmath>
#include <set>

#include "testing.hpp"
#include "xgrad/select.hpp"

using namespace xgrad;
using Ints = std::vector<std::int64_t>;

TEST_SUITE("params") {
    TEST_CASE("params hold mixed types in order") {
        select::Params params{
            {"lr", 0.01}, {"batch_size", 32}, {"optimizer", "sgd"}, {"hidden", Ints{256, 128}}};
        CHECK(params.size() == 4);
        CHECK(params.get_double("lr") == 0.01);
        CHECK(params.get_int("batch_size") == 32);
        CHECK(params.get_double("batch_size") == 32.0);
        CHECK(params.get_string("optimizer") == "sgd");
        CHECK(params.get_ints("hidden") == Ints{256, 128});
        CHECK(params.to_string() == "lr=0.01, batch_size=32, optimizer=sgd, hidden=256,128");

        params.set("lr", 0.1);
        params.set("weight_decay", 1e-4);
        CHECK(params.to_string() ==
              "lr=0.1, batch_size=32, optimizer=sgd, hidden=256,128, weight_decay=1e-04");
        CHECK(params.contains("weight_decay"));
        CHECK_FALSE(params.contains("momentum"));
    }

    TEST_CASE("params report missing names and wrong types") {
        const select::Params params{{"lr", 0.01}, {"optimizer", "sgd"}};
        CHECK_THROWS_WITH_AS(params.at("momentum"),
                             doctest::Contains("Params: no hyperparameter named 'momentum'; the "
                                               "configuration has lr, optimizer"),
                             value_error);
        CHECK_THROWS_WITH_AS(params.get_int("lr"),
                             doctest::Contains("Params: 'lr' is double 0.01, expected int64"),
                             value_error);
        CHECK_THROWS_WITH_AS(
            params.get_double("optimizer"),
            doctest::Contains("Params: 'optimizer' is string sgd, expected double"), value_error);
        CHECK_THROWS_WITH_AS((select::Params{{"lr", 0.1}, {"lr", 0.2}}),
                             doctest::Contains("Params: hyperparameter 'lr' is given twice"),
                             value_error);
    }

    TEST_CASE("format value") {
        CHECK(select::format_value(0.001) == "0.001");
        CHECK(select::format_value(3e-5) == "3e-05");
        CHECK(select::format_value(1.0 / 3.0) == "0.3333333333333333");
        CHECK(select::format_value(std::int64_t{-7}) == "-7");
        CHECK(select::format_value(Ints{}) == "");
        CHECK(select::value_type_name(Ints{1}) == std::string("int64 list"));
    }

    TEST_CASE("grid expands with last name fastest") {
        const select::ParamGrid grid = {
            {"lr", {0.1, 0.01}},
            {"batch_size", {10, 100}},
            {"optimizer", {"sgd"}},
        };
        const std::vector<select::Params> combinations = select::expand_grid(grid);
        REQUIRE(combinations.size() == 4);
        CHECK(combinations[0].to_string() == "lr=0.1, batch_size=10, optimizer=sgd");
        CHECK(combinations[1].to_string() == "lr=0.1, batch_size=100, optimizer=sgd");
        CHECK(combinations[2].to_string() == "lr=0.01, batch_size=10, optimizer=sgd");
        CHECK(combinations[3].to_string() == "lr=0.01, batch_size=100, optimizer=sgd");
        CHECK(select::expand_grid({}).size() == 1);
    }

    TEST_CASE("grid rejects empty and repeated names") {
        CHECK_THROWS_WITH_AS(select::expand_grid({{"lr", {}}}),
                             doctest::Contains("expand_grid: hyperparameter 'lr' has no values"),
                             value_error);
        CHECK_THROWS_WITH_AS(select::expand_grid({{"lr", {0.1}}, {"lr", {0.2}}}),
                             doctest::Contains("expand_grid: hyperparameter 'lr' is given twice"),
                             value_error);
        CHECK_THROWS_AS(select::expand_grid({{"", {0.1}}}), value_error);
    }

    TEST_CASE("log uniform stays in range and spreads by decade") {
        const auto distribution = select::Distribution::log_uniform(1e-4, 1e-1);
        Generator generator(5);
        std::size_t below_1e3 = 0;
        constexpr std::size_t kDraws = 3000;
        for (std::size_t i = 0; i < kDraws; ++i) {
            const double value = std::get<double>(distribution.sample(generator));
            CHECK(value >= 1e-4);
            CHECK(value <= 1e-1);
            below_1e3 += value < 1e-3 ? 1 : 0;
        }
        // One decade of three: about a third of the draws, not 1% as a
        // uniform distribution would give.
        CHECK(static_cast<double>(below_1e3) / kDraws == doctest::Approx(1.0 / 3.0).epsilon(0.1));
    }

    TEST_CASE("uniform, integer uniform and choice") {
        Generator generator(9);
        const auto uniform = select::Distribution::uniform(-1.0, 2.0);
        const auto integers = select::Distribution::int_uniform(10, 13);
        const auto choice = select::Distribution::choice({"sgd", "adam", 3});
        std::set<std::int64_t> seen_integers;
        std::set<std::string> seen_choices;
        for (int i = 0; i < 400; ++i) {
            const double value = std::get<double>(uniform.sample(generator));
            CHECK(value >= -1.0);
            CHECK(value < 2.0);
            seen_integers.insert(std::get<std::int64_t>(integers.sample(generator)));
            seen_choices.insert(select::format_value(choice.sample(generator)));
        }
        CHECK(seen_integers == std::set<std::int64_t>{10, 11, 12, 13});
        CHECK(seen_choices == std::set<std::string>{"sgd", "adam", "3"});
        CHECK(select::Distribution::int_uniform(5, 5).sample(generator) ==
              select::ParamValue(std::int64_t{5}));
        CHECK(integers.describe() == "int_uniform(10, 13)");
        CHECK(choice.describe() == "choice(sgd, adam, 3)");
        CHECK(select::Distribution::log_uniform(0.01, 0.1).describe() == "log_uniform(0.01, 0.1)");
    }

    TEST_CASE("distributions reject bad bounds") {
        CHECK_THROWS_WITH_AS(select::Distribution::log_uniform(0.0, 1.0),
                             doctest::Contains("Distribution::log_uniform: low must be positive"),
                             value_error);
        CHECK_THROWS_WITH_AS(select::Distribution::uniform(1.0, 1.0),
                             doctest::Contains("Distribution::uniform: expected finite bounds with "
                                               "low < high, got low = 1, high = 1"),
                             value_error);
        CHECK_THROWS_AS(select::Distribution::uniform(0.0, INFINITY), value_error);
        CHECK_THROWS_AS(select::Distribution::int_uniform(3, 2), value_error);
        CHECK_THROWS_AS(select::Distribution::choice({}), value_error);
    }

    TEST_CASE("sample params is seeded") {
        const select::ParamDistributions space = {
            {"lr", select::Distribution::log_uniform(0.01, 0.1)},
            {"batch_size", select::Distribution::int_uniform(10, 100)},
        };
        const auto first = select::sample_params(space, 5, 42);
        const auto again = select::sample_params(space, 5, 42);
        const auto other = select::sample_params(space, 5, 43);
        REQUIRE(first.size() == 5);
        CHECK(first == again);
        CHECK(first != other);
        for (const select::Params& params : first) {
            CHECK(params.items()[0].first == "lr");
            CHECK(params.items()[1].first == "batch_size");
            CHECK(params.get_int("batch_size") >= 10);
            CHECK(params.get_int("batch_size") <= 100);
        }
        CHECK_THROWS_AS(
            select::sample_params({{"lr", space[0].second}, {"lr", space[0].second}}, 1, 0),
            value_error);
    }
}
