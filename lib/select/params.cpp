#include "xgrad/select/params.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "xgrad/error.hpp"

namespace xgrad::select {

namespace {

template <class T>
const T& get_as(const Params& params, const std::string& name) {
    const ParamValue& value = params.at(name);
    if (const T* typed = std::get_if<T>(&value)) {
        return *typed;
    }
    throw value_error("Params: '" + name + "' is " + value_type_name(value) + " " +
                      format_value(value) + ", expected " + value_type_name(ParamValue(T{})));
}

void check_names(const char* context, const std::vector<std::string>& names) {
    std::set<std::string> seen;
    for (const std::string& name : names) {
        if (name.empty()) {
            throw value_error(std::string(context) + ": a hyperparameter name is empty");
        }
        if (!seen.insert(name).second) {
            throw value_error(std::string(context) + ": hyperparameter '" + name +
                              "' is given twice");
        }
    }
}

void check_range(const char* distribution, double low, double high) {
    if (!(std::isfinite(low) && std::isfinite(high) && low < high)) {
        throw value_error(std::string("Distribution::") + distribution +
                          ": expected finite bounds with low < high, got low = " +
                          format_number(low) + ", high = " + format_number(high));
    }
}

}  // namespace

std::string format_value(const ParamValue& value) {
    if (const auto* number = std::get_if<double>(&value)) {
        return format_number(*number);
    }
    if (const auto* integer = std::get_if<std::int64_t>(&value)) {
        return std::to_string(*integer);
    }
    if (const auto* text = std::get_if<std::string>(&value)) {
        return *text;
    }
    std::string list;
    for (std::int64_t element : std::get<std::vector<std::int64_t>>(value)) {
        list += (list.empty() ? "" : ",") + std::to_string(element);
    }
    return list;
}

const char* value_type_name(const ParamValue& value) {
    constexpr const char* kNames[] = {"double", "int64", "string", "int64 list"};
    return kNames[value.index()];
}

// --- Params --------------------------------------------------------------------

Params::Params(std::initializer_list<Item> items) : items_(items) {
    std::vector<std::string> names;
    for (const Item& item : items_) {
        names.push_back(item.first);
    }
    check_names("Params", names);
}

void Params::set(const std::string& name, ParamValue value) {
    if (name.empty()) {
        throw value_error("Params::set: the hyperparameter name is empty");
    }
    for (Item& item : items_) {
        if (item.first == name) {
            item.second = std::move(value);
            return;
        }
    }
    items_.emplace_back(name, std::move(value));
}

bool Params::contains(const std::string& name) const {
    return std::any_of(items_.begin(), items_.end(),
                       [&name](const Item& item) { return item.first == name; });
}

const ParamValue& Params::at(const std::string& name) const {
    for (const Item& item : items_) {
        if (item.first == name) {
            return item.second;
        }
    }
    std::string present;
    for (const Item& item : items_) {
        present += (present.empty() ? "" : ", ") + item.first;
    }
    throw value_error("Params: no hyperparameter named '" + name + "'; the configuration has " +
                      (present.empty() ? std::string("none") : present));
}

double Params::get_double(const std::string& name) const {
    const ParamValue& value = at(name);
    if (const auto* integer = std::get_if<std::int64_t>(&value)) {
        return static_cast<double>(*integer);
    }
    return get_as<double>(*this, name);
}

std::int64_t Params::get_int(const std::string& name) const {
    return get_as<std::int64_t>(*this, name);
}

const std::string& Params::get_string(const std::string& name) const {
    return get_as<std::string>(*this, name);
}

const std::vector<std::int64_t>& Params::get_ints(const std::string& name) const {
    return get_as<std::vector<std::int64_t>>(*this, name);
}

std::string Params::to_string() const {
    std::string text;
    for (const auto& [name, value] : items_) {
        text += (text.empty() ? "" : ", ") + name + "=" + format_value(value);
    }
    return text;
}

// --- grids -----------------------------------------------------------------------

std::vector<Params> expand_grid(const ParamGrid& grid) {
    std::vector<std::string> names;
    for (const auto& [name, values] : grid) {
        names.push_back(name);
        if (values.empty()) {
            throw value_error("expand_grid: hyperparameter '" + name + "' has no values");
        }
    }
    check_names("expand_grid", names);

    // Counts through the combinations like an odometer: the last name's
    // index turns fastest.
    std::vector<Params> combinations;
    std::vector<std::size_t> index(grid.size(), 0);
    while (true) {
        Params params;
        for (std::size_t i = 0; i < grid.size(); ++i) {
            params.set(grid[i].first, grid[i].second[index[i]]);
        }
        combinations.push_back(std::move(params));

        std::size_t digit = grid.size();
        while (digit > 0 && ++index[digit - 1] == grid[digit - 1].second.size()) {
            index[digit - 1] = 0;
            --digit;
        }
        if (digit == 0) {
            return combinations;
        }
    }
}

// --- distributions ---------------------------------------------------------------

Distribution Distribution::uniform(double low, double high) {
    check_range("uniform", low, high);
    Distribution distribution(Kind::uniform);
    distribution.low_ = low;
    distribution.high_ = high;
    return distribution;
}

Distribution Distribution::log_uniform(double low, double high) {
    check_range("log_uniform", low, high);
    if (!(low > 0.0)) {
        throw value_error("Distribution::log_uniform: low must be positive, got " +
                          format_number(low));
    }
    Distribution distribution(Kind::log_uniform);
    distribution.low_ = low;
    distribution.high_ = high;
    return distribution;
}

Distribution Distribution::int_uniform(std::int64_t low, std::int64_t high) {
    if (low > high) {
        throw value_error("Distribution::int_uniform: expected low <= high, got low = " +
                          std::to_string(low) + ", high = " + std::to_string(high));
    }
    Distribution distribution(Kind::int_uniform);
    distribution.int_low_ = low;
    distribution.int_high_ = high;
    return distribution;
}

Distribution Distribution::choice(std::vector<ParamValue> values) {
    if (values.empty()) {
        throw value_error("Distribution::choice: the list of values is empty");
    }
    Distribution distribution(Kind::choice);
    distribution.values_ = std::move(values);
    return distribution;
}

ParamValue Distribution::sample(Generator& generator) const {
    switch (kind_) {
        case Kind::uniform:
            return generator.uniform(low_, high_);
        case Kind::log_uniform: {
            const double value = std::exp(generator.uniform(std::log(low_), std::log(high_)));
            return std::clamp(value, low_, high_);
        }
        case Kind::int_uniform: {
            // Unsigned arithmetic, because high - low overflows int64 for wide
            // ranges; a span of 0 means all 2^64 values.
            const std::uint64_t span =
                static_cast<std::uint64_t>(int_high_) - static_cast<std::uint64_t>(int_low_) + 1;
            const std::uint64_t offset = span == 0 ? generator.next_bits() : generator.below(span);
            return static_cast<std::int64_t>(static_cast<std::uint64_t>(int_low_) + offset);
        }
        case Kind::choice:
            return values_[generator.below(values_.size())];
    }
    throw std::logic_error("Distribution::sample: unknown kind");
}

std::string Distribution::describe() const {
    switch (kind_) {
        case Kind::uniform:
            return "uniform(" + format_number(low_) + ", " + format_number(high_) + ")";
        case Kind::log_uniform:
            return "log_uniform(" + format_number(low_) + ", " + format_number(high_) + ")";
        case Kind::int_uniform:
            return "int_uniform(" + std::to_string(int_low_) + ", " + std::to_string(int_high_) +
                   ")";
        case Kind::choice: {
            std::string listed;
            for (const ParamValue& value : values_) {
                listed += (listed.empty() ? "" : ", ") + format_value(value);
            }
            return "choice(" + listed + ")";
        }
    }
    throw std::logic_error("Distribution::describe: unknown kind");
}

std::vector<Params> sample_params(const ParamDistributions& distributions, std::size_t count,
                                  std::uint64_t seed) {
    std::vector<std::string> names;
    for (const auto& entry : distributions) {
        names.push_back(entry.first);
    }
    check_names("sample_params", names);

    Generator generator(seed);
    std::vector<Params> samples(count);
    for (Params& params : samples) {
        for (const auto& [name, distribution] : distributions) {
            params.set(name, distribution.sample(generator));
        }
    }
    return samples;
}

}  // namespace xgrad::select
