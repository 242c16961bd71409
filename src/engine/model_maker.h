#pragma once
// Shape twins: GGUF files with random weights (fixed seed) in the exact shape of a real model and
// with a real tokenizer copied from a ggml-vocab-*.gguf of the pinned llama.cpp tree. A twin runs
// at the real model's speed; its text is meaningless. Thread: any; nothing here is shared.

#include "common/status.h"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kvs {

struct ModelShape {
    std::string name;        // "smollm2-135m", "qwen2.5-0.5b", "llama3.2-1b"
    std::string arch;        // "llama" or "qwen2"
    std::string vocab_file;  // e.g. "ggml-vocab-qwen2.gguf"
    int n_embd, n_layer, n_head, n_head_kv, n_ff;
    float rope_theta, rms_eps;
    int n_ctx_train;
    bool qkv_bias;             // qwen2: q/k/v biases
    bool tied_embeddings;      // no output.weight tensor
    bool llama3_rope_scaling;  // rope_freqs.weight with Llama 3.1+ factors (factor 32, ctx 8192)
};

// The shapes `make-model` knows, matching the Hugging Face configs of the real models.
const std::vector<ModelShape>& KnownShapes();

const ModelShape* FindShape(std::string_view name);  // nullptr when unknown

enum class WeightType { kF32, kF16, kQ8_0, kQ4_0 };

// "f32", "f16", "q8_0", "q4_0" (any case); kInvalidArgument otherwise.
Result<WeightType> ParseWeightType(std::string_view name);

const char* WeightTypeName(WeightType type);  // "f32", "f16", "q8_0", "q4_0"

struct MakeModelOptions {
    std::string shape;  // a KnownShapes() name
    std::string out_path;
    std::string vocab_dir;                // empty: DefaultVocabDir()
    WeightType type = WeightType::kQ8_0;  // 2-D weight matrices; norms/biases stay F32
    std::uint32_t seed = 42;
    int n_layer = 0;  // >0 overrides the shape's layer count (a "small shape twin" for fast tests)
    std::function<void(int done, int total)> progress;  // optional, called per tensor
};

std::string DefaultVocabDir();  // the compile definition KVSTREAM_VOCAB_DIR

// Writes the file atomically (a unique tmp file in the same folder, then rename), creating the
// parent folder when needed. The same options give a byte-identical file. Errors:
// kInvalidArgument (unknown shape, bad layer count, unwritable path), kNotFound (missing or
// unreadable vocab file), kInternal (a write failed midway; no partial file is left).
Status MakeModel(const MakeModelOptions& options);

// What a GGUF file says about itself, read from its header only (no tensor data).
struct ModelFileInfo {
    std::string arch;   // general.architecture
    std::string name;   // general.name ("" when absent)
    int n_layer = 0;    // {arch}.block_count
    int n_embd = 0;     // {arch}.embedding_length
    int n_head = 0;     // {arch}.attention.head_count (0 when absent)
    int n_head_kv = 0;  // {arch}.attention.head_count_kv (n_head when absent)
    int n_ff = 0;       // {arch}.feed_forward_length (0 when absent)
    int n_vocab = 0;    // entries of tokenizer.ggml.tokens
    std::int64_t n_tensors = 0;
    std::int64_t n_params = 0;       // elements over all tensors
    std::uint64_t tensor_bytes = 0;  // tensor data, without alignment padding
    std::uint64_t file_bytes = 0;
    std::string embd_type;  // ggml type name of token_embd.weight: "q8_0", "f16", ...
};

// kNotFound when the file is missing, kInvalidArgument when it is not a GGUF model.
Result<ModelFileInfo> InspectModelFile(const std::string& path);

}  // namespace kvs
