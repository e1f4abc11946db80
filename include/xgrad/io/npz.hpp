#pragma once

// Named tensors in NumPy's .npz format: a ZIP archive with one .npy entry per
// tensor, the layout that numpy.savez writes and numpy.load reads.
//
// The tensor named "layers.0.weight" is stored as the entry
// "layers.0.weight.npy", and numpy.load lists it under the key
// "layers.0.weight". xgrad writes the entries uncompressed ("stored"), in
// the order given, with fixed timestamps (1980-01-01 00:00), so the same
// tensors always give the same bytes. It reads stored and deflated entries,
// so files from numpy.savez and numpy.savez_compressed both load.
//
// Limits: no ZIP64, so an archive and each entry must stay under 4 GiB and
// hold fewer than 65535 entries. Encrypted entries, compression methods
// other than stored and deflate, split archives and entries that are not
// .npy files are rejected.

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::io {

/// Tensors with their names, in archive order.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// Throws value_error unless `name` can name a tensor in an .npz archive.
///
/// A name must be non-empty UTF-8 without control characters (which excludes
/// '\0') or backslashes, and must not start with '/'. A '/' nests the tensor
/// in a folder when the archive is unpacked ("encoder/weight"), so each part
/// between slashes must be non-empty and neither "." nor "..". The entry name
/// (the name plus ".npy") must fit in 65535 bytes. `function` starts the message.
void check_tensor_name(std::string_view name, const char* function = "check_tensor_name");

/// Returns the bytes of an .npz archive holding `tensors` in the given order.
/// Throws value_error for an invalid or duplicate name or an undefined tensor,
/// and io_error when the archive would need ZIP64.
std::vector<std::byte> encode_npz(const NamedTensors& tensors);

/// Parses an .npz archive held in memory; the tensors come back in archive
/// order, named by their entry names without ".npy".
///
/// `source` names the archive in error messages, which read
/// "<source>: <problem>" or "<source>: entry '<name>': <problem>". Throws
/// io_error for a truncated or corrupt archive (sizes, offsets or CRC-32
/// that do not match the bytes), ZIP64, encryption, compression methods other
/// than stored (0) and deflate (8), duplicate or non-.npy entries, and any
/// entry that decode_npy rejects. No buffer is allocated from a size the
/// archive claims before that size is checked against the archive's length.
NamedTensors decode_npz(std::span<const std::byte> archive, std::string_view source = "npz data");

/// Saves `tensors` to an .npz archive with write_file_atomically, which
/// leaves a previous file at `path` intact on failure. Checks every name and
/// tensor, and the archive's size, before it creates any file.
void save_npz(const std::filesystem::path& path, const NamedTensors& tensors);

/// Loads an .npz archive written by save_npz, numpy.savez or
/// numpy.savez_compressed. Throws io_error as read_file and decode_npz do,
/// naming `path`.
NamedTensors load_npz(const std::filesystem::path& path);

}  // namespace xgrad::io
