#include "cli/defaults.h"

#include "common/progress.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>

namespace kvs {

std::string CacheDir() {
    if (const char* dir = std::getenv("KVSTREAM_CACHE"); dir != nullptr && *dir != '\0') {
        return dir;
    }
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
        return std::string(xdg) + "/kvstream";
    }
    const char* home = std::getenv("HOME");
    return std::string(home != nullptr ? home : ".") + "/.cache/kvstream";
}

Result<std::string> EnsureShapeTwin(const std::string& shape, WeightType type) {
    const std::string path = CacheDir() + "/models/" + shape + "-" + WeightTypeName(type) + ".gguf";
    if (std::filesystem::exists(path)) {
        return path;
    }
    std::fprintf(stderr, "kvstream: making the %s shape twin (random weights, once): %s\n",
                 shape.c_str(), path.c_str());
    MakeModelOptions o;
    o.shape = shape;
    o.out_path = path;
    o.type = type;
    std::optional<ProgressBar> bar;  // sized by the first callback (tensor count)
    o.progress = [&bar, &shape](int done, int total) {
        if (!bar) {
            bar.emplace("make-model " + shape, static_cast<std::size_t>(total));
        }
        bar->Update(static_cast<std::size_t>(done), "tensors");
    };
    KV_RETURN_IF_ERROR(MakeModel(o));
    if (bar) {
        bar->Finish();
    }
    return path;
}

void Check(const Status& st, const std::string& what) {
    if (!st.ok()) {
        throw std::runtime_error(what + ": " + st.ToString());
    }
}

Result<std::vector<int>> ParseIntList(const std::string& text) {
    std::vector<int> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        char* end = nullptr;
        const long v = std::strtol(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || v <= 0 || v > 1'000'000) {
            return InvalidArgument("not a list of positive integers: '" + text + "'");
        }
        out.push_back(static_cast<int>(v));
    }
    if (out.empty()) {
        return InvalidArgument("empty list");
    }
    return out;
}

}  // namespace kvs
