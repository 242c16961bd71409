#include "engine/backend.h"

#include <ggml-backend.h>
#include <llama.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string_view>

namespace kvs {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kModulePrefix = "libggml-";
constexpr std::string_view kCpuPrefix = "libggml-cpu-";
constexpr std::string_view kModuleSuffix = ".so";

// KVSTREAM_CPU_VARIANT, unless unset, empty or "auto".
std::optional<std::string> RequestedVariant() {
    const char* wanted = std::getenv("KVSTREAM_CPU_VARIANT");
    if (wanted == nullptr || *wanted == '\0' || std::string_view(wanted) == "auto") {
        return std::nullopt;
    }
    return std::string(wanted);
}

std::atomic<int> g_min_level{
    GGML_LOG_LEVEL_WARN};  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

void LogToStderr(ggml_log_level level, const char* text, void* /*user*/) {
    // CONT lines continue the previous message; keep them only in verbose mode.
    if (level == GGML_LOG_LEVEL_CONT) {
        if (g_min_level.load() <= GGML_LOG_LEVEL_INFO) {
            std::fputs(text, stderr);
        }
        return;
    }
    if (static_cast<int>(level) >= g_min_level.load()) {
        std::fputs(text, stderr);
    }
}

struct Variant {
    std::string name;
    std::string path;
    int score = 0;  // ggml_backend_score(): 0 when this CPU cannot run it, -1: not a backend
};

// ggml's own selection rule (ggml_backend_load_best): open the module, ask its score function,
// which only reads CPUID and is compiled without the variant's instruction set.
int ScoreOf(const std::string& path) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        return -1;
    }
    using ScoreFn = int (*)();
    auto* fn = reinterpret_cast<ScoreFn>(dlsym(handle, "ggml_backend_score"));
    const int score = fn != nullptr ? fn() : -1;
    dlclose(handle);
    return score;
}

// Files named libggml-<prefix-free name>.so in `dir`, with `cpu` choosing CPU variants or others.
std::vector<Variant> Modules(const std::string& dir, bool cpu) {
    std::vector<Variant> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string file = entry.path().filename().string();
        if (!file.starts_with(kModulePrefix) || !file.ends_with(kModuleSuffix) ||
            file.starts_with(kCpuPrefix) != cpu) {
            continue;
        }
        const std::size_t skip = (cpu ? kCpuPrefix : kModulePrefix).size();
        out.push_back({file.substr(skip, file.size() - skip - kModuleSuffix.size()),
                       entry.path().string(), 0});
    }
    std::sort(out.begin(), out.end(),
              [](const Variant& a, const Variant& b) { return a.name < b.name; });
    return out;
}

std::string Join(const std::vector<std::string>& items, const char* sep = " ") {
    std::string out;
    for (const auto& s : items) {
        out += (out.empty() ? "" : sep) + s;
    }
    return out;
}

Result<Variant> ChooseCpuVariant(const std::string& dir, std::vector<std::string>& runnable) {
    std::vector<Variant> variants = Modules(dir, /*cpu=*/true);
    if (variants.empty()) {
        return NotFound("no CPU backend (" + std::string(kCpuPrefix) + "*.so) in " + dir +
                        ": run scripts/setup.sh to build the pinned llama.cpp");
    }
    for (Variant& v : variants) {
        v.score = ScoreOf(v.path);
    }
    std::vector<Variant> ok;
    std::copy_if(variants.begin(), variants.end(), std::back_inserter(ok),
                 [](const Variant& v) { return v.score > 0; });
    std::stable_sort(ok.begin(), ok.end(),
                     [](const Variant& a, const Variant& b) { return a.score > b.score; });
    for (const Variant& v : ok) {
        runnable.push_back(v.name);
    }
    const std::optional<std::string> wanted = RequestedVariant();
    if (!wanted) {
        if (ok.empty()) {
            return Unavailable("this CPU can run none of the CPU backends in " + dir);
        }
        return ok.front();
    }
    for (const Variant& v : variants) {
        if (v.name == *wanted) {
            if (v.score <= 0) {
                return Unavailable("this CPU cannot run the CPU backend variant '" + v.name +
                                   "' (it can run: " + Join(runnable) + ")");
            }
            return v;
        }
    }
    std::vector<std::string> names;
    for (const Variant& v : variants) {
        names.push_back(v.name);
    }
    return NotFound("KVSTREAM_CPU_VARIANT names '" + *wanted + "', which is not in " + dir +
                    " (built: " + Join(names) + ")");
}

void DescribeCpu(ggml_backend_reg_t reg, CpuBackendInfo& info) {
    if (auto* features = reinterpret_cast<ggml_backend_get_features_t>(
            ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features"))) {
        for (const ggml_backend_feature* f = features(reg); f->name != nullptr; ++f) {
            info.features.emplace_back(f->name);
        }
    }
    auto* extra = reinterpret_cast<ggml_backend_dev_get_extra_bufts_t>(
        ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts"));
    if (extra != nullptr && ggml_backend_reg_dev_count(reg) > 0) {
        for (auto* b = extra(ggml_backend_reg_dev_get(reg, 0)); b != nullptr && *b != nullptr;
             ++b) {
            info.extra_buffers.emplace_back(ggml_backend_buft_name(*b));
        }
    }
}

// Before llama_backend_init, which loads ggml's own choice when no backend is registered yet.
Status LoadBackends(CpuBackendInfo& info) {
    if (ggml_backend_reg_t reg = ggml_backend_reg_by_name("CPU")) {
        // A llama.cpp built without runtime-loaded backends: nothing to choose.
        if (const auto wanted = RequestedVariant()) {
            return Unavailable("KVSTREAM_CPU_VARIANT names '" + *wanted +
                               "', but this llama.cpp has its CPU backend built in (no variants)");
        }
        info.variant = "built-in";
        DescribeCpu(reg, info);
        llama_backend_init();
        return Status::Ok();
    }
    const std::string dir = BackendFolder();
    auto chosen_or = ChooseCpuVariant(dir, info.runnable);
    if (!chosen_or.ok()) {
        return chosen_or.status();
    }
    const Variant chosen = std::move(chosen_or).value();
    ggml_backend_reg_t reg = ggml_backend_load(chosen.path.c_str());
    if (reg == nullptr) {
        return Unavailable("ggml could not load " + chosen.path);
    }
    llama_backend_init();
    info.variant = chosen.name;
    DescribeCpu(reg, info);
    for (const Variant& other : Modules(dir, /*cpu=*/false)) {
        if (ggml_backend_reg_t r = ggml_backend_load(other.path.c_str())) {
            info.other_backends.emplace_back(ggml_backend_reg_name(r));
        }
    }
    return Status::Ok();
}

CpuBackendInfo& Info() {
    static CpuBackendInfo info;
    return info;
}

}  // namespace

Status InitBackend(LibraryLogLevel level) {
    switch (level) {
        case LibraryLogLevel::kQuiet:
            g_min_level = GGML_LOG_LEVEL_ERROR;
            break;
        case LibraryLogLevel::kWarnings:
            g_min_level = GGML_LOG_LEVEL_WARN;
            break;
        case LibraryLogLevel::kVerbose:
            g_min_level = GGML_LOG_LEVEL_DEBUG;
            break;
    }
    return EnsureBackend();
}

Status EnsureBackend() {
    static std::once_flag once;
    static Status outcome;
    std::call_once(once, [] {
        llama_log_set(LogToStderr, nullptr);
        outcome = LoadBackends(Info());
    });
    return outcome;
}

const CpuBackendInfo& CpuBackend() {
    return Info();
}

std::string CpuBackendLine() {
    const CpuBackendInfo& b = CpuBackend();
    std::string line = "CPU backend " + b.variant + " (" + Join(b.features);
    if (!b.extra_buffers.empty()) {
        line += "; weight buffers " + Join(b.extra_buffers);
    }
    line += ")";
    if (!b.other_backends.empty()) {
        line += ", with " + Join(b.other_backends, ", ");
    }
    return line;
}

std::string CpuBackendPrometheus() {
    const CpuBackendInfo& b = CpuBackend();
    return "# HELP kvs_cpu_backend_info The CPU backend variant the engine runs and its features\n"
           "# TYPE kvs_cpu_backend_info gauge\n"
           "kvs_cpu_backend_info{variant=\"" +
           b.variant + "\",features=\"" + Join(b.features) + "\"} 1\n";
}

std::string BackendFolder() {
    if (const char* dir = std::getenv("KVSTREAM_GGML_BACKEND_DIR"); dir != nullptr && *dir) {
        return dir;
    }
    return KVSTREAM_GGML_BACKEND_DIR;
}

std::string LibraryVersionLine() {
    return std::string("ggml ") + ggml_version() + " (commit " + ggml_commit() + ")";
}

}  // namespace kvs
