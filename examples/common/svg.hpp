#pragma once

// Line charts as SVG, for the training curves the examples write.

#include <string>
#include <vector>

namespace xgrad::examples {

struct Series {
    std::string name;
    std::vector<double> x;
    std::vector<double> y;
};

struct Chart {
    std::string title;
    std::string x_label;
    std::string y_label;
    std::vector<Series> series;
};

/// Renders the charts side by side as one SVG document.
std::string render_svg(const std::vector<Chart>& charts);

}  // namespace xgrad::examples
