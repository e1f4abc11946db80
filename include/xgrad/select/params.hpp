#pragma once

// Hyperparameters for model selection: named values of mixed types, grids of
// them, and distributions for random search.
//
// A value is a ParamValue: a double (learning rate, weight decay), an int64
// (batch size, epochs), a string (optimizer or activation name), or a list
// of int64 (hidden layer widths). A configuration is a Params, which keeps its
// names in insertion order so that tables and CSV files list them as given:
//
//     select::Params params{{"lr", 0.01}, {"batch_size", 32}, {"optimizer", "sgd"}};
//     const double lr = params.get_double("lr");
//
// An int literal such as 32 becomes an int64, and a double literal a double.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "xgrad/random.hpp"

namespace xgrad::select {

/// One hyperparameter value.
using ParamValue = std::variant<double, std::int64_t, std::string, std::vector<std::int64_t>>;

/// Formats a value for tables and CSV files: a double in its shortest
/// round-trip form ("0.01", "3e-05"), an int64 in decimal, a string as it is,
/// and a list as comma-separated numbers ("256,128").
std::string format_value(const ParamValue& value);

/// The name of the value's type: "double", "int64", "string" or "int64 list".
const char* value_type_name(const ParamValue& value);

/// A configuration: hyperparameter values by name, in insertion order.
class Params {
  public:
    using Item = std::pair<std::string, ParamValue>;

    Params() = default;

    /// Throws value_error for a name given twice.
    Params(std::initializer_list<Item> items);

    /// Sets `name` to `value`, replacing an earlier value of that name or
    /// appending a new name. Throws value_error for an empty name.
    void set(const std::string& name, ParamValue value);

    bool contains(const std::string& name) const;

    /// The value of `name`. Throws value_error naming the missing name and
    /// the names present.
    const ParamValue& at(const std::string& name) const;

    /// The value of `name` as a double, converting an int64. Throws
    /// value_error naming the parameter and its type for a string or a list.
    double get_double(const std::string& name) const;

    /// The value of `name`, which must be an int64.
    std::int64_t get_int(const std::string& name) const;

    /// The value of `name`, which must be a string.
    const std::string& get_string(const std::string& name) const;

    /// The value of `name`, which must be a list of int64.
    const std::vector<std::int64_t>& get_ints(const std::string& name) const;

    const std::vector<Item>& items() const { return items_; }
    std::size_t size() const { return items_.size(); }
    bool empty() const { return items_.empty(); }

    /// "lr=0.01, batch_size=32, hidden=256,128".
    std::string to_string() const;

    bool operator==(const Params& other) const = default;

  private:
    std::vector<Item> items_;
};

/// Values to try per hyperparameter, in order. expand_grid() forms every
/// combination.
using ParamGrid = std::vector<std::pair<std::string, std::vector<ParamValue>>>;

/// Every combination of a grid's values, as nested loops over the names in
/// the grid's order with the last name varying fastest:
///
///     {{"lr", {0.1, 0.01}}, {"batch_size", {10, 100}}}
///     -> lr=0.1 batch_size=10, lr=0.1 batch_size=100,
///        lr=0.01 batch_size=10, lr=0.01 batch_size=100
///
/// Throws value_error for an empty or repeated name and for a name without
/// values. An empty grid gives one empty configuration.
std::vector<Params> expand_grid(const ParamGrid& grid);

/// A distribution of one hyperparameter, for random search.
class Distribution {
  public:
    /// A double uniform in [low, high). Throws value_error unless low < high,
    /// both finite.
    static Distribution uniform(double low, double high);

    /// A double whose logarithm is uniform: exp(u) with u uniform in
    /// [log low, log high), clamped to [low, high] against rounding. For
    /// scales such as learning rates and weight decay, where 0.001 to 0.01
    /// matters as much as 0.01 to 0.1. Throws value_error unless
    /// 0 < low < high, both finite.
    static Distribution log_uniform(double low, double high);

    /// An int64 uniform in [low, high], both ends included. Throws
    /// value_error unless low <= high.
    static Distribution int_uniform(std::int64_t low, std::int64_t high);

    /// One of `values`, each with the same probability. Throws value_error
    /// for an empty list.
    static Distribution choice(std::vector<ParamValue> values);

    /// Draws a value. Each draw takes one number from `generator`.
    ParamValue sample(Generator& generator) const;

    /// "log_uniform(0.01, 0.1)", "int_uniform(10, 100)", "choice(sgd, adam)".
    std::string describe() const;

  private:
    enum class Kind { uniform, log_uniform, int_uniform, choice };

    explicit Distribution(Kind kind) : kind_(kind) {}

    Kind kind_;
    double low_ = 0.0;
    double high_ = 0.0;
    std::int64_t int_low_ = 0;
    std::int64_t int_high_ = 0;
    std::vector<ParamValue> values_;
};

/// Distributions per hyperparameter, in the order that configurations list them.
using ParamDistributions = std::vector<std::pair<std::string, Distribution>>;

/// `count` configurations drawn from Generator(seed): each configuration
/// draws its names in order, one number per name. The same seed gives the
/// same configurations on every platform up to the last bit of log_uniform
/// values, which goes through std::log and std::exp. Throws value_error for
/// an empty or repeated name.
std::vector<Params> sample_params(const ParamDistributions& distributions, std::size_t count,
                                  std::uint64_t seed);

}  // namespace xgrad::select
