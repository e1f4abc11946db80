#pragma once

// One tensor in NumPy's .npy format, as specified in numpy/lib/format.py.
//
// A .npy file is the magic string "\x93NUMPY", a major and a minor version
// byte, the header length (little-endian uint16 in version 1.0, uint32 in
// 2.0 and 3.0), and a header that is a Python dict literal such as
//
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//
// padded with spaces and ended by a newline. The values follow in C order.
//
// xgrad writes version 1.0 (2.0 only for a header over 65535 bytes) with
// 'descr' '<f4', '<f8' or '<i8', and pads the header so that the data starts
// at a multiple of 64 bytes. It reads versions 1.0, 2.0 and 3.0 of those
// three dtypes. It also accepts the byte-order marks '=' (native) and '|'
// (not applicable) because this machine is little-endian; the library does
// not build on a big-endian host. Fortran order, big-endian data, other
// dtypes and shapes of more than 64 dimensions are rejected with io_error.

#include <cstddef>
#include <filesystem>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xgrad/dtype.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::io {

/// Returns the .npy preamble and header for a tensor of this dtype and shape,
/// everything that precedes the data. Its length is a multiple of 64.
std::string encode_npy_header(Dtype dtype, const Shape& shape);

/// Returns `tensor` as the bytes of a .npy file: the header, then the values.
/// Throws value_error for an undefined tensor.
std::vector<std::byte> encode_npy(const Tensor& tensor);

/// Writes the bytes of encode_npy to `out` without building them in memory.
/// Throws value_error for an undefined tensor.
void write_npy(std::ostream& out, const Tensor& tensor);

/// Parses a .npy file held in memory into a new tensor.
///
/// `source` names the file or archive entry in error messages, which read
/// "<source>: <problem>". Throws io_error for
///  - a wrong magic string or an unsupported version,
///  - a malformed header dict,
///  - an unsupported dtype (the message names it), fortran_order True or
///    big-endian data,
///  - a shape of more than 64 dimensions or whose size in bytes overflows,
///  - data shorter or longer than the shape needs.
/// The tensor is allocated only after its size is checked against `bytes`.
Tensor decode_npy(std::span<const std::byte> bytes, std::string_view source = "npy data");

/// Saves `tensor` to a .npy file with write_file_atomically, which throws
/// io_error on failure and leaves a previous file at `path` intact.
/// Throws value_error for an undefined tensor.
void save_npy(const std::filesystem::path& path, const Tensor& tensor);

/// Loads a .npy file written by save_npy or numpy.save. Throws io_error as
/// read_file and decode_npy do, naming `path`.
Tensor load_npy(const std::filesystem::path& path);

}  // namespace xgrad::io
