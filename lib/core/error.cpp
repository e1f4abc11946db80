#include "xgrad/error.hpp"

#include <charconv>
#include <cmath>

namespace xgrad {

std::string format_number(double value) {
    if (std::isnan(value)) {
        return "nan";  // to_chars writes "-nan" for a NaN with the sign bit set
    }
    char text[32];
    const auto result = std::to_chars(text, text + sizeof text, value);
    return std::string(text, result.ptr);
}

}  // namespace xgrad
