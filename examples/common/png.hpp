#pragma once

// Raster pictures for the examples: grayscale images and color heatmaps,
// upscaled, labelled with a built-in bitmap font, composed side by side and
// written as PNG files through libpng.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <xtensor/xarray.hpp>

namespace xgrad::examples {

struct Color {
    std::uint8_t red = 0;
    std::uint8_t green = 0;
    std::uint8_t blue = 0;

    bool operator==(const Color&) const = default;
};

inline constexpr Color kWhite{255, 255, 255};
inline constexpr Color kBlack{0, 0, 0};

/// An RGB image with 8 bits per channel, stored row by row from the top.
class Image {
public:
    Image() = default;
    Image(std::size_t width, std::size_t height, Color background = kWhite);

    std::size_t width() const { return width_; }
    std::size_t height() const { return height_; }

    Color at(std::size_t x, std::size_t y) const;
    void set(std::size_t x, std::size_t y, Color color);

    /// Copies `source` with its top left corner at (x, y); the parts that
    /// fall outside this image are cut off.
    void paste(const Image& source, std::size_t x, std::size_t y);

    /// The pixels as red, green, blue bytes, row by row.
    const std::vector<std::uint8_t>& bytes() const { return bytes_; }

private:
    std::size_t width_ = 0;
    std::size_t height_ = 0;
    std::vector<std::uint8_t> bytes_;
};

/// A two-dimensional array (rows, columns) as gray levels: `low` and below
/// black, `high` and above white, linear in between.
Image grayscale(const xt::xarray<double>& values, double low = 0.0, double high = 1.0);

enum class Colormap {
    /// For signed values: blue below zero, white at zero, red above, with
    /// the 11 colors of ColorBrewer's RdBu scheme from -limit to +limit.
    diverging,
    /// For magnitudes: matplotlib's viridis, dark purple at 0 through green
    /// to yellow at `limit`.
    sequential,
};

/// A two-dimensional array as colors. Values beyond ±limit (or below 0 for
/// the sequential map) get the end colors. A limit of 0 or less shows every
/// value as the color of zero.
Image heatmap(const xt::xarray<double>& values, Colormap colormap, double limit);

/// The `quantile` (0 to 1) of |values|, a color scale limit that a few
/// extreme pixels cannot set alone. Falls back to max |values| when the
/// quantile is 0, and to 1 when every value is 0.
double robust_limit(const xt::xarray<double>& values, double quantile = 0.99);

/// Enlarges every pixel to a factor × factor square (nearest neighbour).
Image upscale(const Image& image, std::size_t factor);

/// Width and height in pixels of `text` drawn at `scale`. A '\n' starts a
/// new line.
std::size_t text_width(std::string_view text, std::size_t scale = 1);
std::size_t text_height(std::string_view text, std::size_t scale = 1);

/// Draws `text` with its top left corner at (x, y) in a 5 × 7 pixel font
/// (6 × 10 per character cell with spacing), each font pixel a scale ×
/// scale square. Covers ASCII letters, digits and common punctuation. Other
/// characters are drawn as a hollow box.
void draw_text(Image& image, std::size_t x, std::size_t y, std::string_view text, Color color,
               std::size_t scale = 1);

/// An image with a caption above it.
struct Panel {
    std::string caption;
    Image image;
};

struct LayoutOptions {
    std::size_t gap = 8;         ///< pixels between panels and around the edge
    std::size_t text_scale = 2;  ///< font pixel size of captions and titles
    Color background = kWhite;
    Color text = kBlack;
};

/// Places the panels in a row, each caption above its image, with an
/// optional title line above them all.
Image side_by_side(const std::vector<Panel>& panels, const std::string& title = "",
                   const LayoutOptions& options = {});

/// Places images one below the other, left-aligned.
Image stack_vertically(const std::vector<Image>& images, const LayoutOptions& options = {});

/// The PNG file of `image`: 8-bit RGB, or 8-bit grayscale when every pixel
/// is gray. Throws std::runtime_error with libpng's message when encoding
/// fails.
std::vector<std::byte> encode_png(const Image& image);

/// Writes `image` as a PNG file with xgrad::io::write_file_atomically, so a
/// reader never sees a partial file. Throws xgrad::io_error when the file
/// cannot be written.
void write_png(const std::filesystem::path& path, const Image& image);

}  // namespace xgrad::examples
