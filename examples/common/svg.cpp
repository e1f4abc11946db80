#include "svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>

namespace xgrad::examples {

namespace {

constexpr double kWidth = 440;
constexpr double kHeight = 320;
constexpr double kLeft = 64;  // room for the y tick labels
constexpr double kRight = 16;
constexpr double kTop = 36;
constexpr double kBottom = 48;
constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"};

std::string escape(const std::string& text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '&': out += "&amp;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string number(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.4g", value);
    return text;
}

std::string coordinate(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", value);
    return text;
}

// A tick step of 1, 2 or 5 times a power of ten giving about five ticks.
double tick_step(double span) {
    const double raw = span / 5.0;
    const double power = std::pow(10.0, std::floor(std::log10(raw)));
    for (double factor : {1.0, 2.0, 5.0}) {
        if (raw <= factor * power) {
            return factor * power;
        }
    }
    return 10.0 * power;
}

struct Range {
    double low = std::numeric_limits<double>::infinity();
    double high = -std::numeric_limits<double>::infinity();

    void add(double value) {
        if (std::isfinite(value)) {
            low = std::min(low, value);
            high = std::max(high, value);
        }
    }

    // Widens an empty or zero-width range so that scaling is defined.
    void settle() {
        if (!(low <= high)) {
            low = 0.0;
            high = 1.0;
        } else if (low == high) {
            low -= 0.5;
            high += 0.5;
        }
    }
};

void render_chart(std::string& svg, const Chart& chart, double offset) {
    Range xs;
    Range ys;
    for (const Series& series : chart.series) {
        for (double x : series.x) xs.add(x);
        for (double y : series.y) ys.add(y);
    }
    xs.settle();
    ys.settle();
    const double plot_width = kWidth - kLeft - kRight;
    const double plot_height = kHeight - kTop - kBottom;
    auto px = [&](double x) { return offset + kLeft + (x - xs.low) / (xs.high - xs.low) * plot_width; };
    auto py = [&](double y) { return kTop + (1.0 - (y - ys.low) / (ys.high - ys.low)) * plot_height; };

    svg += "<text x=\"" + coordinate(offset + kWidth / 2) + "\" y=\"20\" text-anchor=\"middle\" "
           "font-size=\"14\" font-weight=\"bold\">" + escape(chart.title) + "</text>\n";
    svg += "<rect x=\"" + coordinate(offset + kLeft) + "\" y=\"" + coordinate(kTop) + "\" width=\"" +
           coordinate(plot_width) + "\" height=\"" + coordinate(plot_height) +
           "\" fill=\"none\" stroke=\"#444\"/>\n";

    const double y_step = tick_step(ys.high - ys.low);
    for (double y = std::ceil(ys.low / y_step) * y_step; y <= ys.high + 1e-12; y += y_step) {
        svg += "<line x1=\"" + coordinate(offset + kLeft) + "\" x2=\"" + coordinate(offset + kLeft + plot_width) +
               "\" y1=\"" + coordinate(py(y)) + "\" y2=\"" + coordinate(py(y)) + "\" stroke=\"#ddd\"/>\n";
        svg += "<text x=\"" + coordinate(offset + kLeft - 6) + "\" y=\"" + coordinate(py(y) + 4) +
               "\" text-anchor=\"end\" font-size=\"11\">" + number(y) + "</text>\n";
    }
    const double x_step = std::max(1.0, tick_step(xs.high - xs.low));
    for (double x = std::ceil(xs.low / x_step) * x_step; x <= xs.high + 1e-12; x += x_step) {
        svg += "<text x=\"" + coordinate(px(x)) + "\" y=\"" + coordinate(kTop + plot_height + 16) +
               "\" text-anchor=\"middle\" font-size=\"11\">" + number(x) + "</text>\n";
    }
    svg += "<text x=\"" + coordinate(offset + kLeft + plot_width / 2) + "\" y=\"" +
           coordinate(kHeight - 10) + "\" text-anchor=\"middle\" font-size=\"12\">" +
           escape(chart.x_label) + "</text>\n";
    svg += "<text transform=\"translate(" + coordinate(offset + 14) + "," + coordinate(kTop + plot_height / 2) +
           ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">" + escape(chart.y_label) + "</text>\n";

    for (std::size_t s = 0; s < chart.series.size(); ++s) {
        const Series& series = chart.series[s];
        const char* color = kColors[s % std::size(kColors)];
        std::string points;
        for (std::size_t i = 0; i < std::min(series.x.size(), series.y.size()); ++i) {
            if (std::isfinite(series.y[i])) {
                points += coordinate(px(series.x[i])) + "," + coordinate(py(series.y[i])) + " ";
            }
        }
        svg += "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"2\" points=\"" +
               points + "\"/>\n";
        const double legend_y = kTop + 14 + 16 * static_cast<double>(s);
        svg += "<line x1=\"" + coordinate(offset + kLeft + 10) + "\" x2=\"" + coordinate(offset + kLeft + 30) +
               "\" y1=\"" + coordinate(legend_y - 4) + "\" y2=\"" + coordinate(legend_y - 4) +
               "\" stroke=\"" + color + "\" stroke-width=\"2\"/>\n";
        svg += "<text x=\"" + coordinate(offset + kLeft + 36) + "\" y=\"" + coordinate(legend_y) +
               "\" font-size=\"11\">" + escape(series.name) + "</text>\n";
    }
}

}  // namespace

std::string render_svg(const std::vector<Chart>& charts) {
    const double width = kWidth * static_cast<double>(std::max<std::size_t>(charts.size(), 1));
    std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + coordinate(width) +
                      "\" height=\"" + coordinate(kHeight) + "\" font-family=\"sans-serif\">\n" +
                      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    for (std::size_t i = 0; i < charts.size(); ++i) {
        render_chart(svg, charts[i], kWidth * static_cast<double>(i));
    }
    return svg + "</svg>\n";
}

}  // namespace xgrad::examples
