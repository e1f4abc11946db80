#include "png.hpp"

#include <png.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <span>
#include <stdexcept>

#include <xgrad/io/file.hpp>

namespace xgrad::examples {

namespace {

// --- colormaps ------------------------------------------------------------------

// ColorBrewer RdBu, 11 classes, reversed so that -1 is dark blue and +1 dark red.
constexpr std::array<Color, 11> kDiverging = {{{5, 48, 97},
                                               {33, 102, 172},
                                               {67, 147, 195},
                                               {146, 197, 222},
                                               {209, 229, 240},
                                               {247, 247, 247},
                                               {253, 219, 199},
                                               {244, 165, 130},
                                               {214, 96, 77},
                                               {178, 24, 43},
                                               {103, 0, 31}}};

// matplotlib's viridis sampled at 0, 1/8, ..., 1.
constexpr std::array<Color, 9> kSequential = {{{68, 1, 84},
                                               {71, 44, 122},
                                               {59, 81, 139},
                                               {44, 113, 142},
                                               {33, 144, 141},
                                               {39, 173, 129},
                                               {92, 200, 99},
                                               {170, 220, 50},
                                               {253, 231, 37}}};

// The color at t in [0, 1], linear between evenly spaced control points.
template <std::size_t N>
Color interpolate(const std::array<Color, N>& colors, double t) {
    const double position = std::clamp(t, 0.0, 1.0) * static_cast<double>(N - 1);
    const auto low = std::min(static_cast<std::size_t>(position), N - 2);
    const double fraction = position - static_cast<double>(low);
    auto mix = [fraction](std::uint8_t a, std::uint8_t b) {
        return static_cast<std::uint8_t>(std::lround(a + fraction * (b - a)));
    };
    const Color& a = colors[low];
    const Color& b = colors[low + 1];
    return {mix(a.red, b.red), mix(a.green, b.green), mix(a.blue, b.blue)};
}

void check_matrix(const char* function, const xt::xarray<double>& values) {
    if (values.dimension() != 2) {
        throw std::invalid_argument(std::string(function) +
                                    ": expected a two-dimensional array (rows, columns), got " +
                                    std::to_string(values.dimension()) + " dimensions");
    }
}

// --- font -----------------------------------------------------------------------

// Each glyph is 8 rows of 5 pixels, '#' on and '.' off, rows separated by
// spaces. Rows 0-6 hold capitals and digits. Lowercase letters use rows 2-6,
// and their descenders row 7.
struct Glyph {
    char character;
    std::string_view rows;
};

constexpr std::size_t kGlyphWidth = 5;
constexpr std::size_t kGlyphRows = 8;
constexpr std::size_t kCellWidth = 6;    // one column of spacing
constexpr std::size_t kCellHeight = 10;  // two rows of spacing

constexpr Glyph kFont[] = {
    {' ', "..... ..... ..... ..... ..... ..... ..... ....."},
    {'!', "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.. ....."},
    {'#', ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#. ....."},
    {'%', "##..# ##..# ...#. ..#.. .#... #..## #..## ....."},
    {'\'', "..#.. ..#.. .#... ..... ..... ..... ..... ....."},
    {'(', "...#. ..#.. .#... .#... .#... ..#.. ...#. ....."},
    {')', ".#... ..#.. ...#. ...#. ...#. ..#.. .#... ....."},
    {'*', "..... ..#.. #.#.# .###. #.#.# ..#.. ..... ....."},
    {'+', "..... ..#.. ..#.. ##### ..#.. ..#.. ..... ....."},
    {',', "..... ..... ..... ..... ..... .##.. ..#.. .#..."},
    {'-', "..... ..... ..... ##### ..... ..... ..... ....."},
    {'.', "..... ..... ..... ..... ..... .##.. .##.. ....."},
    {'/', "....# ....# ...#. ..#.. .#... #.... #.... ....."},
    {'0', ".###. #...# #..## #.#.# ##..# #...# .###. ....."},
    {'1', "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###. ....."},
    {'2', ".###. #...# ....# ...#. ..#.. .#... ##### ....."},
    {'3', "##### ...#. ..#.. ...#. ....# #...# .###. ....."},
    {'4', "...#. ..##. .#.#. #..#. ##### ...#. ...#. ....."},
    {'5', "##### #.... ####. ....# ....# #...# .###. ....."},
    {'6', "..##. .#... #.... ####. #...# #...# .###. ....."},
    {'7', "##### ....# ...#. ..#.. .#... .#... .#... ....."},
    {'8', ".###. #...# #...# .###. #...# #...# .###. ....."},
    {'9', ".###. #...# #...# .#### ....# ...#. .##.. ....."},
    {':', "..... .##.. .##.. ..... .##.. .##.. ..... ....."},
    {';', "..... .##.. .##.. ..... .##.. ..#.. .#... ....."},
    {'<', "...#. ..#.. .#... #.... .#... ..#.. ...#. ....."},
    {'=', "..... ..... ##### ..... ##### ..... ..... ....."},
    {'>', ".#... ..#.. ...#. ....# ...#. ..#.. .#... ....."},
    {'?', ".###. #...# ....# ...#. ..#.. ..... ..#.. ....."},
    {'A', ".###. #...# #...# ##### #...# #...# #...# ....."},
    {'B', "####. #...# #...# ####. #...# #...# ####. ....."},
    {'C', ".###. #...# #.... #.... #.... #...# .###. ....."},
    {'D', "####. #...# #...# #...# #...# #...# ####. ....."},
    {'E', "##### #.... #.... ####. #.... #.... ##### ....."},
    {'F', "##### #.... #.... ####. #.... #.... #.... ....."},
    {'G', ".###. #...# #.... #.### #...# #...# .#### ....."},
    {'H', "#...# #...# #...# ##### #...# #...# #...# ....."},
    {'I', ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###. ....."},
    {'J', "..### ...#. ...#. ...#. ...#. #..#. .##.. ....."},
    {'K', "#...# #..#. #.#.. ##... #.#.. #..#. #...# ....."},
    {'L', "#.... #.... #.... #.... #.... #.... ##### ....."},
    {'M', "#...# ##.## #.#.# #.#.# #...# #...# #...# ....."},
    {'N', "#...# #...# ##..# #.#.# #..## #...# #...# ....."},
    {'O', ".###. #...# #...# #...# #...# #...# .###. ....."},
    {'P', "####. #...# #...# ####. #.... #.... #.... ....."},
    {'Q', ".###. #...# #...# #...# #.#.# #..#. .##.# ....."},
    {'R', "####. #...# #...# ####. #.#.. #..#. #...# ....."},
    {'S', ".#### #.... #.... .###. ....# ....# ####. ....."},
    {'T', "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ....."},
    {'U', "#...# #...# #...# #...# #...# #...# .###. ....."},
    {'V', "#...# #...# #...# #...# #...# .#.#. ..#.. ....."},
    {'W', "#...# #...# #...# #.#.# #.#.# #.#.# .#.#. ....."},
    {'X', "#...# #...# .#.#. ..#.. .#.#. #...# #...# ....."},
    {'Y', "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.. ....."},
    {'Z', "##### ....# ...#. ..#.. .#... #.... ##### ....."},
    {'[', ".###. .#... .#... .#... .#... .#... .###. ....."},
    {']', ".###. ...#. ...#. ...#. ...#. ...#. .###. ....."},
    {'_', "..... ..... ..... ..... ..... ..... ..... #####"},
    {'a', "..... ..... .###. ....# .#### #...# .#### ....."},
    {'b', "#.... #.... #.##. ##..# #...# #...# ####. ....."},
    {'c', "..... ..... .###. #.... #.... #...# .###. ....."},
    {'d', "....# ....# .##.# #..## #...# #...# .#### ....."},
    {'e', "..... ..... .###. #...# ##### #.... .###. ....."},
    {'f', "..##. .#..# .#... ###.. .#... .#... .#... ....."},
    {'g', "..... ..... .#### #...# #...# .#### ....# .###."},
    {'h', "#.... #.... #.##. ##..# #...# #...# #...# ....."},
    {'i', "..#.. ..... .##.. ..#.. ..#.. ..#.. .###. ....."},
    {'j', "...#. ..... ..##. ...#. ...#. ...#. #..#. .##.."},
    {'k', "#.... #.... #..#. #.#.. ##... #.#.. #..#. ....."},
    {'l', ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###. ....."},
    {'m', "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.# ....."},
    {'n', "..... ..... #.##. ##..# #...# #...# #...# ....."},
    {'o', "..... ..... .###. #...# #...# #...# .###. ....."},
    {'p', "..... ..... ####. #...# #...# ####. #.... #...."},
    {'q', "..... ..... .#### #...# #...# .#### ....# ....#"},
    {'r', "..... ..... #.##. ##..# #.... #.... #.... ....."},
    {'s', "..... ..... .###. #.... .###. ....# ####. ....."},
    {'t', ".#... .#... ###.. .#... .#... .#..# ..##. ....."},
    {'u', "..... ..... #...# #...# #...# #..## .##.# ....."},
    {'v', "..... ..... #...# #...# #...# .#.#. ..#.. ....."},
    {'w', "..... ..... #...# #...# #.#.# #.#.# .#.#. ....."},
    {'x', "..... ..... #...# .#.#. ..#.. .#.#. #...# ....."},
    {'y', "..... ..... #...# #...# #...# .#### ....# .###."},
    {'z', "..... ..... ##### ...#. ..#.. .#... ##### ....."},
    {'|', "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."},
};

constexpr std::string_view kMissingGlyph = "##### #...# #...# #...# #...# #...# ##### .....";

constexpr bool well_formed(std::string_view rows) {
    if (rows.size() != kGlyphRows * (kGlyphWidth + 1) - 1) {
        return false;
    }
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const bool separator = i % (kGlyphWidth + 1) == kGlyphWidth;
        const char c = rows[i];
        if (separator ? c != ' ' : (c != '#' && c != '.')) {
            return false;
        }
    }
    return true;
}

constexpr bool font_well_formed() {
    for (const Glyph& glyph : kFont) {
        if (!well_formed(glyph.rows)) {
            return false;
        }
    }
    return well_formed(kMissingGlyph);
}

static_assert(font_well_formed(), "every glyph must be 8 rows of 5 '#' or '.' separated by spaces");

std::string_view glyph_rows(char character) {
    for (const Glyph& glyph : kFont) {
        if (glyph.character == character) {
            return glyph.rows;
        }
    }
    return kMissingGlyph;
}

void fill_square(Image& image, std::size_t x, std::size_t y, std::size_t size, Color color) {
    for (std::size_t dy = 0; dy < size && y + dy < image.height(); ++dy) {
        for (std::size_t dx = 0; dx < size && x + dx < image.width(); ++dx) {
            image.set(x + dx, y + dy, color);
        }
    }
}

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    std::size_t start = 0;
    while (true) {
        const std::size_t end = text.find('\n', start);
        lines.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
        if (end == std::string_view::npos) {
            return lines;
        }
        start = end + 1;
    }
}

}  // namespace

// --- images ---------------------------------------------------------------------

Image::Image(std::size_t width, std::size_t height, Color background)
    : width_(width), height_(height), bytes_(3 * width * height) {
    for (std::size_t i = 0; i < width * height; ++i) {
        bytes_[3 * i] = background.red;
        bytes_[3 * i + 1] = background.green;
        bytes_[3 * i + 2] = background.blue;
    }
}

Color Image::at(std::size_t x, std::size_t y) const {
    const std::size_t i = 3 * (y * width_ + x);
    return {bytes_.at(i), bytes_.at(i + 1), bytes_.at(i + 2)};
}

void Image::set(std::size_t x, std::size_t y, Color color) {
    if (x >= width_ || y >= height_) {
        throw std::out_of_range("Image::set: pixel (" + std::to_string(x) + ", " +
                                std::to_string(y) + ") is outside the " + std::to_string(width_) +
                                " x " + std::to_string(height_) + " image");
    }
    const std::size_t i = 3 * (y * width_ + x);
    bytes_[i] = color.red;
    bytes_[i + 1] = color.green;
    bytes_[i + 2] = color.blue;
}

void Image::paste(const Image& source, std::size_t x, std::size_t y) {
    for (std::size_t sy = 0; sy < source.height() && y + sy < height_; ++sy) {
        for (std::size_t sx = 0; sx < source.width() && x + sx < width_; ++sx) {
            set(x + sx, y + sy, source.at(sx, sy));
        }
    }
}

Image grayscale(const xt::xarray<double>& values, double low, double high) {
    check_matrix("grayscale", values);
    Image image(values.shape()[1], values.shape()[0]);
    const double span = high > low ? high - low : 1.0;
    for (std::size_t y = 0; y < image.height(); ++y) {
        for (std::size_t x = 0; x < image.width(); ++x) {
            const double t = std::clamp((values(y, x) - low) / span, 0.0, 1.0);
            const auto level = static_cast<std::uint8_t>(std::lround(255.0 * t));
            image.set(x, y, {level, level, level});
        }
    }
    return image;
}

Image heatmap(const xt::xarray<double>& values, Colormap colormap, double limit) {
    check_matrix("heatmap", values);
    Image image(values.shape()[1], values.shape()[0]);
    for (std::size_t y = 0; y < image.height(); ++y) {
        for (std::size_t x = 0; x < image.width(); ++x) {
            const double scaled = limit > 0.0 ? values(y, x) / limit : 0.0;
            // NaN maps to the color of zero rather than to an end color.
            const double v = std::isnan(scaled) ? 0.0 : scaled;
            image.set(x, y,
                      colormap == Colormap::diverging ? interpolate(kDiverging, 0.5 + 0.5 * v)
                                                      : interpolate(kSequential, v));
        }
    }
    return image;
}

double robust_limit(const xt::xarray<double>& values, double quantile) {
    std::vector<double> magnitudes;
    magnitudes.reserve(values.size());
    for (double v : values) {
        if (std::isfinite(v)) {
            magnitudes.push_back(std::abs(v));
        }
    }
    if (magnitudes.empty()) {
        return 1.0;
    }
    std::sort(magnitudes.begin(), magnitudes.end());
    const double position =
        std::clamp(quantile, 0.0, 1.0) * static_cast<double>(magnitudes.size() - 1);
    const double limit = magnitudes[static_cast<std::size_t>(std::ceil(position))];
    if (limit > 0.0) {
        return limit;
    }
    return magnitudes.back() > 0.0 ? magnitudes.back() : 1.0;
}

Image upscale(const Image& image, std::size_t factor) {
    if (factor == 0) {
        throw std::invalid_argument("upscale: the factor must be at least 1");
    }
    Image result(image.width() * factor, image.height() * factor);
    for (std::size_t y = 0; y < result.height(); ++y) {
        for (std::size_t x = 0; x < result.width(); ++x) {
            result.set(x, y, image.at(x / factor, y / factor));
        }
    }
    return result;
}

// --- text -----------------------------------------------------------------------

std::size_t text_width(std::string_view text, std::size_t scale) {
    std::size_t widest = 0;
    for (std::string_view line : split_lines(text)) {
        widest = std::max(widest, line.size());
    }
    // The spacing column after the last character is not part of the text.
    return widest == 0 ? 0 : (widest * kCellWidth - 1) * scale;
}

std::size_t text_height(std::string_view text, std::size_t scale) {
    return split_lines(text).size() * kCellHeight * scale;
}

void draw_text(Image& image, std::size_t x, std::size_t y, std::string_view text, Color color,
               std::size_t scale) {
    std::size_t line_top = y;
    for (std::string_view line : split_lines(text)) {
        std::size_t left = x;
        for (char character : line) {
            const std::string_view rows = glyph_rows(character);
            for (std::size_t row = 0; row < kGlyphRows; ++row) {
                for (std::size_t column = 0; column < kGlyphWidth; ++column) {
                    if (rows[row * (kGlyphWidth + 1) + column] == '#') {
                        fill_square(image, left + column * scale, line_top + row * scale, scale,
                                    color);
                    }
                }
            }
            left += kCellWidth * scale;
        }
        line_top += kCellHeight * scale;
    }
}

// --- layout ---------------------------------------------------------------------

Image side_by_side(const std::vector<Panel>& panels, const std::string& title,
                   const LayoutOptions& options) {
    const std::size_t gap = options.gap;
    const std::size_t scale = options.text_scale;
    std::size_t caption_height = 0;
    std::size_t image_height = 0;
    std::size_t width = gap;
    for (const Panel& panel : panels) {
        caption_height =
            std::max(caption_height, panel.caption.empty() ? 0 : text_height(panel.caption, scale));
        image_height = std::max(image_height, panel.image.height());
        width += std::max(panel.image.width(), text_width(panel.caption, scale)) + gap;
    }
    // Half a gap separates the title from the captions.
    const std::size_t title_height = title.empty() ? 0 : text_height(title, scale) + gap / 2;
    width = std::max(width, text_width(title, scale) + 2 * gap);
    const std::size_t height = gap + title_height + caption_height + image_height + gap;

    Image result(width, height, options.background);
    draw_text(result, gap, gap, title, options.text, scale);
    std::size_t left = gap;
    const std::size_t caption_top = gap + title_height;
    for (const Panel& panel : panels) {
        draw_text(result, left, caption_top, panel.caption, options.text, scale);
        result.paste(panel.image, left, caption_top + caption_height);
        left += std::max(panel.image.width(), text_width(panel.caption, scale)) + gap;
    }
    return result;
}

Image stack_vertically(const std::vector<Image>& images, const LayoutOptions& options) {
    std::size_t width = 0;
    std::size_t height = 0;
    for (const Image& image : images) {
        width = std::max(width, image.width());
        height += image.height();
    }
    Image result(width, height, options.background);
    std::size_t top = 0;
    for (const Image& image : images) {
        result.paste(image, 0, top);
        top += image.height();
    }
    return result;
}

// --- PNG ------------------------------------------------------------------------

std::vector<std::byte> encode_png(const Image& image) {
    const std::vector<std::uint8_t>& rgb = image.bytes();
    bool gray = true;
    for (std::size_t i = 0; i < rgb.size() && gray; i += 3) {
        gray = rgb[i] == rgb[i + 1] && rgb[i] == rgb[i + 2];
    }
    std::vector<std::uint8_t> levels;
    if (gray) {
        levels.reserve(rgb.size() / 3);
        for (std::size_t i = 0; i < rgb.size(); i += 3) {
            levels.push_back(rgb[i]);
        }
    }
    const void* pixels = gray ? levels.data() : rgb.data();

    // libpng's simplified API (1.6) reports errors in image.message instead
    // of through longjmp, so no C++ object is skipped on failure.
    png_image description{};
    description.version = PNG_IMAGE_VERSION;
    description.width = static_cast<png_uint_32>(image.width());
    description.height = static_cast<png_uint_32>(image.height());
    description.format = gray ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    auto fail = [&description]() -> std::runtime_error {
        const std::string message = description.message;
        png_image_free(&description);
        return std::runtime_error("encode_png: libpng failed: " + message);
    };

    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&description, nullptr, &size, 0, pixels, 0, nullptr)) {
        throw fail();
    }
    std::vector<std::byte> bytes(size);
    if (!png_image_write_to_memory(&description, bytes.data(), &size, 0, pixels, 0, nullptr)) {
        throw fail();
    }
    bytes.resize(size);
    return bytes;
}

void write_png(const std::filesystem::path& path, const Image& image) {
    const std::vector<std::byte> bytes = encode_png(image);
    io::write_file_atomically(path, std::span<const std::byte>(bytes));
}

}  // namespace xgrad::examples
