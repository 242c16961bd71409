#pragma once
// The dashboard's files (src/http/dashboard/), compiled into the binary so that `kvstream serve`
// serves the page with no network and no files beside it. The .cpp is generated at build time
// by cmake/embed_assets.cmake.

#include <string_view>

namespace kvs::http {

struct DashboardAsset {
    std::string_view path;  // "/" for index.html, else "/dashboard/<file>"
    std::string_view content_type;
    std::string_view body;
};

// The asset served at `path`, or null.
const DashboardAsset* FindDashboardAsset(std::string_view path);

}  // namespace kvs::http
