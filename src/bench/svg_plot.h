#pragma once
// A small SVG chart writer for the benchmark report: points and lines per series on linear or
// logarithmic axes, a legend, tick labels. Self-contained files with no scripts or fonts to load.

#include <string>
#include <utility>
#include <vector>

namespace kvs::bench {

struct PlotSeries {
    std::string name;
    std::string color;  // CSS color
    std::vector<std::pair<double, double>> points;
    bool lines = true;    // join the points (in x order)
    bool markers = true;  // draw a dot at each point
};

struct Plot {
    std::string title;
    std::string x_label;
    std::string y_label;
    bool log_x = false;
    bool log_y = true;
    std::vector<PlotSeries> series;
};

// The chart as an SVG document (800 x 480). Points with a non-positive coordinate on a log axis
// are left out.
std::string RenderSvg(const Plot& plot);

// A color for the i-th series (a fixed palette, readable on white).
const char* SeriesColor(std::size_t i);

}  // namespace kvs::bench
