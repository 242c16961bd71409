// kvstream: a stateful inference engine for streaming data (see README.md).

#include "cli/commands.h"
#include "engine/backend.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "build_info.h"

namespace {

// `kvstream --version`: kvstream, the pinned llama.cpp and how it was built, and the CPU backend
// variants this machine can run (loading nothing else).
std::string VersionText() {
    std::string text = std::string("kvstream ") + kvs::kKvstreamVersion + "\n" + kvs::kLlamaBuild +
                       "\n" + kvs::LibraryVersionLine() + "\nbackends: " + kvs::BackendFolder();
    if (kvs::Status st = kvs::InitBackend(kvs::LibraryLogLevel::kQuiet); st.ok()) {
        text += "\nthis machine: " + kvs::CpuBackendLine();
        std::string runnable;
        for (const auto& v : kvs::CpuBackend().runnable) {
            runnable += (runnable.empty() ? "" : " ") + v;
        }
        if (!runnable.empty()) {
            text += "\nvariants this CPU can run, best first: " + runnable;
        }
    } else {
        text += "\nthis machine: " + st.ToString();
    }
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "kvstream: persistent per-session KV caches for streaming data.\n"
        "Data is prefilled as it arrives; a question computes only its own and its answer's "
        "tokens."};
    app.name("kvstream");
    app.set_version_flag("--version", VersionText);
    app.add_option_function<std::string>(
           "--cpu-variant",
           [](const std::string& v) {
               // Parsing runs before any thread is started: no getenv can race.
               setenv("KVSTREAM_CPU_VARIANT", v.c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
           },
           "CPU backend variant to load (e.g. haswell, x64; default: the best this CPU can run; "
           "same as KVSTREAM_CPU_VARIANT)")
        ->trigger_on_parse();
    app.require_subcommand(1);
    kvs::AddDemoCommand(app);
    kvs::AddMakeModelCommand(app);
    kvs::AddCoreBenchCommand(app);
    kvs::AddMarketBenchCommand(app);
    kvs::AddLoadCommand(app);
    kvs::AddFlashBenchCommand(app);
    kvs::AddSpecBenchCommand(app);
    kvs::AddDurableBenchCommand(app);
    kvs::AddServeCommand(app);
    try {
        std::vector<std::string> args(argv, argv + argc);
        args = kvs::ExpandServeConfig(std::move(args));
        std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);  // CLI11's order
        app.parse(reversed);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kvstream: %s\n", e.what());
        return 1;
    }
    return 0;
}
