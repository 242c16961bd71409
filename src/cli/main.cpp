// kvstream: a stateful inference engine for streaming data (see README.md).

#include "cli/commands.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
    CLI::App app{
        "kvstream: persistent per-session KV caches for streaming data.\n"
        "Data is prefilled as it arrives; a question computes only its own and its answer's "
        "tokens."};
    app.name("kvstream");
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
