// libFuzzer harness for the IDX reader (raw and gzip-compressed). A file
// either decodes or throws io_error; anything else (a crash, a sanitizer
// report, another exception) is a bug.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "xgrad/data/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const xgrad::data::IdxFile file =
            xgrad::data::decode_idx(std::vector<std::uint8_t>(data, data + size), "fuzz input");
        if (xgrad::shape_size(file.shape) <= (1u << 20)) {
            xgrad::data::idx_to_tensor(file, xgrad::Dtype::float32);
        }
    } catch (const xgrad::io_error&) {
    }
    return 0;
}
