// libFuzzer harness for the .npy reader. A file either decodes or throws
// io_error; anything else is a bug.

#include <cstddef>
#include <cstdint>
#include <span>

#include "xgrad/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        xgrad::io::decode_npy(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz input");
    } catch (const xgrad::io_error&) {
    }
    return 0;
}
