#pragma once
// The kvstream subcommands. Each Add*Command registers a CLI11 subcommand and its callback.

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace kvs {

void AddMakeModelCommand(CLI::App& app);
void AddDemoCommand(CLI::App& app);
void AddCoreBenchCommand(CLI::App& app);
void AddMarketBenchCommand(CLI::App& app);
void AddLoadCommand(CLI::App& app);
void AddFlashBenchCommand(CLI::App& app);
void AddSpecBenchCommand(CLI::App& app);
void AddDurableBenchCommand(CLI::App& app);
void AddServeCommand(CLI::App& app);

// `kvstream serve --config FILE`: the file's options inserted before the command line's.
std::vector<std::string> ExpandServeConfig(std::vector<std::string> args);

}  // namespace kvs
