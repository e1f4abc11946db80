// libFuzzer harness for the .npz reader (ZIP archives of .npy files, stored
// or deflated). An archive either decodes or throws io_error; anything else
// is a bug.

#include <cstddef>
#include <cstdint>
#include <span>

#include "xgrad/io/npz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        xgrad::io::decode_npz(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz input");
    } catch (const xgrad::io_error&) {
    }
    return 0;
}
