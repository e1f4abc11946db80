#pragma once

// Exception types thrown by xgrad. Every message starts with the op, function
// or file it concerns, so that a user can find the line that caused it:
//
//   matmul: inner dimensions differ: a has shape (2, 3), b has shape (4, 5)

#include <stdexcept>
#include <string>

namespace xgrad {

/// Tensors whose shapes do not fit the op they were passed to.
class shape_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// An argument with an invalid value: a dtype, an axis, a scalar out of range.
class value_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// A case that an op or function does not support; the message names both.
class not_implemented : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

/// Misuse of the autograd engine: a second backward through a released tape,
/// or a value saved for backward that was modified in place.
class autograd_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A NaN or infinity found by anomaly detection (see autograd.hpp): the
/// message names the op, its input shapes and where it ran.
class anomaly_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A file that cannot be read or written: missing, truncated, corrupt, or of
/// an unsupported format. The message names the file.
class io_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A failure that concerns several ranks of a data-parallel run (see
/// xgrad/distributed.hpp): MPI cannot start, or the ranks hold models that
/// differ in the number, shapes or dtypes of their tensors. Every rank
/// throws it alike, so no rank is left waiting for the others.
class distributed_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Formats a number for a message in its shortest form that reads back as
/// the same double: "0.001", "1e-08", "1e+300", "inf", "nan".
std::string format_number(double value);

}  // namespace xgrad

// Checks an internal invariant. On in debug and test builds, where a failure
// throws std::logic_error with the file and line, and compiled out in release
// builds. Caller mistakes are reported with the exceptions above instead.
#if defined(XGRAD_ENABLE_ASSERTS) || !defined(NDEBUG)
#define XGRAD_ASSERT(condition)                                                          \
    do {                                                                                 \
        if (!(condition)) {                                                              \
            throw std::logic_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                   ": internal check failed: " #condition);              \
        }                                                                                \
    } while (false)
#else
#define XGRAD_ASSERT(condition) \
    do {                        \
    } while (false)
#endif
