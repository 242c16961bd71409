// kvstream make-model: writes a shape twin (random weights, real tokenizer) of a known model.

#include "cli/commands.h"
#include "common/progress.h"
#include "engine/model_maker.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace kvs {
namespace {

struct MakeModelArgs {
    std::string shape;
    std::string out_path;
    std::string type = "q8_0";
    std::uint32_t seed = 42;
    int n_layer = 0;
    std::string vocab_dir;
    bool list = false;
};

void PrintShapes() {
    std::printf("%-14s %-6s %6s %6s %6s %8s %6s %8s  %s\n", "shape", "arch", "n_embd", "layers",
                "heads", "kv_heads", "n_ff", "ctx", "tokenizer");
    for (const ModelShape& s : KnownShapes()) {
        std::printf("%-14s %-6s %6d %6d %6d %8d %6d %8d  %s\n", s.name.c_str(), s.arch.c_str(),
                    s.n_embd, s.n_layer, s.n_head, s.n_head_kv, s.n_ff, s.n_ctx_train,
                    s.vocab_file.c_str());
    }
}

[[noreturn]] void Fail(const std::string& message) {
    std::fprintf(stderr, "kvstream make-model: %s\n", message.c_str());
    throw CLI::RuntimeError(1);
}

void RunMakeModel(const MakeModelArgs& args) {
    if (args.list) {
        PrintShapes();
        return;
    }
    if (args.shape.empty() || args.out_path.empty()) {
        Fail("--shape and --out are required (see --list for the shapes)");
    }
    Result<WeightType> type = ParseWeightType(args.type);
    if (!type.ok()) {
        Fail(type.status().ToString());
    }
    MakeModelOptions options;
    options.shape = args.shape;
    options.out_path = args.out_path;
    options.vocab_dir = args.vocab_dir;
    options.type = *type;
    options.seed = args.seed;
    options.n_layer = args.n_layer;
    std::optional<ProgressBar> bar;  // sized by the first callback (the tensor count)
    options.progress = [&bar](int done, int total) {
        if (!bar) {
            bar.emplace("writing tensors", static_cast<std::size_t>(total));
        }
        bar->Update(static_cast<std::size_t>(done));
    };

    std::fprintf(stderr, "making a %s shape twin (%s) in %s\n", args.shape.c_str(),
                 WeightTypeName(*type), args.out_path.c_str());
    const auto start = std::chrono::steady_clock::now();
    const Status status = MakeModel(options);
    if (bar) {
        bar->Finish();
    }
    if (!status.ok()) {
        Fail(status.ToString());
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    std::error_code ec;
    const auto n_bytes = std::filesystem::file_size(args.out_path, ec);
    std::printf("wrote %s: %s twin, %s, seed %u, %.1f MiB in %.1f s\n", args.out_path.c_str(),
                args.shape.c_str(), WeightTypeName(*type), args.seed,
                static_cast<double>(n_bytes) / (1024.0 * 1024.0), elapsed.count());
}

}  // namespace

void AddMakeModelCommand(CLI::App& app) {
    auto args = std::make_shared<MakeModelArgs>();
    CLI::App* cmd = app.add_subcommand(
        "make-model",
        "Write a shape twin: a GGUF with random weights (fixed seed) in the exact shape of a real "
        "model, with a real tokenizer. It runs at the real model's speed; its text is "
        "meaningless.");
    cmd->add_option("--shape", args->shape, "Model shape (see --list)");
    cmd->add_option("--out", args->out_path, "Output GGUF path (written atomically)");
    cmd->add_option("--type", args->type, "Type of the 2-D weights: q8_0, q4_0, f16 or f32")
        ->capture_default_str();
    cmd->add_option("--seed", args->seed, "Random seed; the same seed gives the same file")
        ->capture_default_str();
    cmd->add_option("--layers", args->n_layer, "Layer count override (0: the real model's)")
        ->check(CLI::Range(0, 512));
    cmd->add_option("--vocab-dir", args->vocab_dir, "Folder with ggml-vocab-*.gguf")
        ->default_str(DefaultVocabDir());
    cmd->add_flag("--list", args->list, "List the known shapes and exit");
    cmd->callback([args] { RunMakeModel(*args); });
}

}  // namespace kvs
