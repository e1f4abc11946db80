#pragma once

// Anomaly detection: the checks behind set_anomaly_detection().

#include <cstdint>
#include <span>
#include <string>

#include "xgrad/detail/array.hpp"

namespace xgrad::detail {

/// True while anomaly detection is on for this thread.
bool anomaly_enabled();

/// Counts the ops run on this thread since detection was turned on, and
/// returns this op's number (starting at 1).
std::uint64_t next_anomaly_op();

/// True when a float array contains a NaN or an infinity; false for integers.
bool has_non_finite(const Array& values);

/// "(2, 3), (3)": the shapes of an op's inputs, for messages.
std::string shapes_string(std::span<const Array* const> inputs);

/// For a message about a non-finite output: "" when every input is finite,
/// else a clause naming the first input that already held a NaN or an
/// infinity, so the user looks upstream instead of at this op.
std::string non_finite_input_note(std::span<const Array* const> inputs);

}  // namespace xgrad::detail
