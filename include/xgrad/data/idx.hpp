#pragma once

// Reader for IDX files, the format of MNIST and Fashion-MNIST: a magic number
// (two zero bytes, a type code, the number of dimensions), the dimensions as
// big-endian 32-bit integers, then the values in row-major order, big-endian.
// Files may be gzip-compressed; the reader tells by the first two bytes.

#include <cstdint>
#include <filesystem>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::data {

/// Element type codes of the IDX format.
enum class IdxType : std::uint8_t {
    uint8 = 0x08,
    int8 = 0x09,
    int16 = 0x0B,
    int32 = 0x0C,
    float32 = 0x0D,
    float64 = 0x0E,
};

/// The contents of an IDX file: its element type, its dimensions and the
/// values as stored (big-endian).
struct IdxFile {
    IdxType type = IdxType::uint8;
    Shape shape;
    std::vector<std::uint8_t> data;
};

/// Reads an IDX file, gzip-compressed or not. Throws io_error naming the file
/// when it is missing, unreadable, not IDX (bad magic number or type code),
/// truncated, longer than its dimensions describe, or corrupt as gzip. Memory
/// grows with the data actually read, never from the header alone.
IdxFile read_idx(const std::filesystem::path& path);

/// Parses IDX bytes already in memory (uncompressed); `name` labels errors.
IdxFile parse_idx(std::vector<std::uint8_t> bytes, const std::string& name);

/// Decodes the bytes of an IDX file as read_idx() does after reading it:
/// gzip-compressed or not. `name` labels errors.
IdxFile decode_idx(std::vector<std::uint8_t> bytes, const std::string& name);

/// Converts the values to a tensor of the given dtype. uint8 data becomes
/// 0..255 (divide by 255 for pixel intensities in [0, 1]).
Tensor idx_to_tensor(const IdxFile& file, Dtype dtype);

}  // namespace xgrad::data
