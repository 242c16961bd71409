#include "bench/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace kvs::bench {
namespace {

constexpr double kWidth = 800;
constexpr double kHeight = 480;
constexpr double kLeft = 80;
constexpr double kRight = 190;  // legend
constexpr double kTop = 40;
constexpr double kBottom = 60;

std::string Escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string Label(double v) {
    char buf[32];
    if (std::fabs(v) >= 1000 && std::fmod(v, 1000) == 0) {
        std::snprintf(buf, sizeof buf, "%gk", v / 1000);
    } else {
        std::snprintf(buf, sizeof buf, "%g", v);
    }
    return buf;
}

struct Axis {
    double lo = 0;
    double hi = 1;
    bool log = false;

    double Fraction(double v) const {
        return log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                   : (v - lo) / (hi - lo);
    }

    // 1, 2, 5 steps per decade (log) or a "nice" linear step.
    std::vector<double> Ticks() const {
        std::vector<double> ticks;
        if (log) {
            for (double decade = std::pow(10, std::floor(std::log10(lo))); decade <= hi;
                 decade *= 10) {
                for (double m : {1.0, 2.0, 5.0}) {
                    if (m * decade >= lo * 0.999 && m * decade <= hi * 1.001) {
                        ticks.push_back(m * decade);
                    }
                }
            }
            return ticks;
        }
        const double raw = (hi - lo) / 6;
        const double mag = std::pow(10, std::floor(std::log10(raw)));
        const double step = raw / mag < 2 ? 2 * mag : raw / mag < 5 ? 5 * mag : 10 * mag;
        for (double t = std::ceil(lo / step) * step; t <= hi * 1.0001; t += step) {
            ticks.push_back(t);
        }
        return ticks;
    }
};

Axis Fit(const std::vector<double>& values, bool log) {
    Axis a;
    a.log = log;
    double lo = std::numeric_limits<double>::max();
    double hi = std::numeric_limits<double>::lowest();
    for (double v : values) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    if (values.empty()) {
        lo = log ? 1 : 0;
        hi = log ? 10 : 1;
    }
    if (log) {
        a.lo = std::pow(10, std::floor(std::log10(lo)));
        a.hi = std::pow(10, std::ceil(std::log10(hi)));
        if (a.hi <= a.lo) {
            a.hi = a.lo * 10;
        }
    } else {
        a.lo = std::min(0.0, lo);
        a.hi = hi > a.lo ? hi * 1.05 : a.lo + 1;
    }
    return a;
}

}  // namespace

const char* SeriesColor(std::size_t i) {
    static const char* kPalette[] = {"#1f77b4", "#2ca02c", "#d62728", "#ff7f0e",
                                     "#9467bd", "#8c564b", "#17becf", "#7f7f7f"};
    return kPalette[i % 8];
}

std::string RenderSvg(const Plot& plot) {
    std::vector<double> xs;
    std::vector<double> ys;
    auto usable = [&](double x, double y) {
        return (!plot.log_x || x > 0) && (!plot.log_y || y > 0) && std::isfinite(x) &&
               std::isfinite(y);
    };
    for (const auto& s : plot.series) {
        for (const auto& [x, y] : s.points) {
            if (usable(x, y)) {
                xs.push_back(x);
                ys.push_back(y);
            }
        }
    }
    const Axis ax = Fit(xs, plot.log_x);
    const Axis ay = Fit(ys, plot.log_y);
    const double pw = kWidth - kLeft - kRight;
    const double ph = kHeight - kTop - kBottom;
    auto X = [&](double v) { return kLeft + ax.Fraction(v) * pw; };
    auto Y = [&](double v) { return kTop + (1 - ay.Fraction(v)) * ph; };

    std::ostringstream o;
    o.setf(std::ios::fixed);
    o.precision(1);
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
      << "\" viewBox=\"0 0 " << kWidth << " " << kHeight
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kWidth / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">"
      << Escape(plot.title) << "</text>\n";
    for (double t : ax.Ticks()) {
        o << "<line x1=\"" << X(t) << "\" y1=\"" << kTop << "\" x2=\"" << X(t) << "\" y2=\""
          << kTop + ph << "\" stroke=\"#e6e6e6\"/>\n"
          << "<text x=\"" << X(t) << "\" y=\"" << kTop + ph + 16 << "\" text-anchor=\"middle\">"
          << Label(t) << "</text>\n";
    }
    for (double t : ay.Ticks()) {
        o << "<line x1=\"" << kLeft << "\" y1=\"" << Y(t) << "\" x2=\"" << kLeft + pw << "\" y2=\""
          << Y(t) << "\" stroke=\"#e6e6e6\"/>\n"
          << "<text x=\"" << kLeft - 6 << "\" y=\"" << Y(t) + 4 << "\" text-anchor=\"end\">"
          << Label(t) << "</text>\n";
    }
    o << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"#333\"/>\n"
      << "<text x=\"" << kLeft + pw / 2 << "\" y=\"" << kHeight - 18 << "\" text-anchor=\"middle\">"
      << Escape(plot.x_label) << "</text>\n"
      << "<text transform=\"translate(18," << kTop + ph / 2
      << ") rotate(-90)\" text-anchor=\"middle\">" << Escape(plot.y_label) << "</text>\n";
    for (std::size_t i = 0; i < plot.series.size(); ++i) {
        const PlotSeries& s = plot.series[i];
        std::vector<std::pair<double, double>> pts;
        for (const auto& p : s.points) {
            if (usable(p.first, p.second)) {
                pts.push_back(p);
            }
        }
        std::sort(pts.begin(), pts.end());
        if (s.lines && pts.size() > 1) {
            o << "<polyline fill=\"none\" stroke=\"" << s.color
              << "\" stroke-width=\"2\" points=\"";
            for (const auto& [x, y] : pts) {
                o << X(x) << "," << Y(y) << " ";
            }
            o << "\"/>\n";
        }
        if (s.markers) {
            for (const auto& [x, y] : pts) {
                o << "<circle cx=\"" << X(x) << "\" cy=\"" << Y(y) << "\" r=\"3\" fill=\""
                  << s.color << "\" fill-opacity=\"0.7\"/>\n";
            }
        }
        const double ly = kTop + 10 + 20 * static_cast<double>(i);
        o << "<rect x=\"" << kLeft + pw + 14 << "\" y=\"" << ly - 9
          << "\" width=\"12\" height=\"12\" fill=\"" << s.color << "\"/>\n"
          << "<text x=\"" << kLeft + pw + 32 << "\" y=\"" << ly + 1 << "\">" << Escape(s.name)
          << "</text>\n";
    }
    o << "</svg>\n";
    return o.str();
}

}  // namespace kvs::bench
