#pragma once

// Process-wide libllama setup: the log callback and the compute backends.
//
// Thread: InitBackend may be called from any thread, any number of times; the first call loads
// the backends (under a once-flag) and later calls only change the log level. CpuBackend() is
// safe from any thread after a successful InitBackend.
//
// CPU backends (docs/architecture.md, "CPU backends"). The default llama.cpp build holds ggml's
// CPU backend as runtime-loaded variants, one per x86-64 feature level (libggml-cpu-<name>.so in
// one folder). InitBackend scores every variant with its own ggml_backend_score (0: this CPU
// cannot run it) and loads exactly one: the best, or the one named by the environment variable
// KVSTREAM_CPU_VARIANT (`kvstream --cpu-variant NAME`), which is how the tests run the same
// checks on several kernel families of one machine. A build with the CPU backend linked in
// (another llama.cpp install) reports the variant "built-in".

#include "common/status.h"

#include <string>
#include <vector>

namespace kvs {

enum class LibraryLogLevel { kQuiet, kWarnings, kVerbose };

// The CPU backend this process runs.
struct CpuBackendInfo {
    std::string variant;                      // e.g. "zen4", "haswell", "x64"; "built-in"
    std::vector<std::string> features;        // e.g. AVX2, AVX512, REPACK: what the kernels use
    std::vector<std::string> extra_buffers;   // weight layouts it repacks into, e.g. CPU_REPACK
    std::vector<std::string> runnable;        // variants in the folder this CPU can run, best first
    std::vector<std::string> other_backends;  // GPU backends loaded beside it, e.g. CUDA
};

// Initializes libllama and loads the backends once. Errors: kNotFound (no CPU variant in the
// backend folder, or KVSTREAM_CPU_VARIANT names one that is not there), kUnavailable (the named
// variant cannot run on this CPU, or ggml refused to load it). Every later call returns the
// first call's outcome. libllama's log callback is global: kQuiet drops everything but errors,
// kWarnings keeps warnings and errors.
Status InitBackend(LibraryLogLevel level = LibraryLogLevel::kWarnings);

// InitBackend without touching the log level (the model loader calls it).
Status EnsureBackend();

// What InitBackend loaded. Requires a successful InitBackend.
const CpuBackendInfo& CpuBackend();

// One line naming the CPU backend variant and its features, as llama.cpp's system-info line
// does: "CPU backend zen4 (AVX2 AVX512 ... REPACK; weight buffers CPU_REPACK)".
std::string CpuBackendLine();

// The same for /metrics: "kvs_cpu_backend_info{variant="zen4",features="..."} 1" with HELP/TYPE.
std::string CpuBackendPrometheus();

// The folder the runtime-loaded backends are read from: KVSTREAM_GGML_BACKEND_DIR when set,
// else the pinned build's lib/ggml.
std::string BackendFolder();

// ggml's own version for `kvstream --version`: "ggml 0.23.0 (commit 80fb11a)".
std::string LibraryVersionLine();

}  // namespace kvs
