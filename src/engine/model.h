#pragma once
// A loaded GGUF model and its tokenizer. Thread-safety: after Load, every method is safe to call
// from any thread (libllama's tokenizer is thread-safe); the Model must outlive its Contexts.

#include "common/status.h"
#include "common/tokens.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct llama_model;
struct llama_vocab;

namespace kvs {

struct ModelOptions {
    std::string path;
    int n_gpu_layers = 0;  // layers offloaded to a GPU backend when one is built in
    // Let the CPU backend repack weights into its faster layouts (ggml's extra buffer types,
    // e.g. CPU_REPACK for Q4_0/Q8_0). Off only to measure what the repacking gains.
    bool repack_weights = true;
};

class Model {
public:
    // Errors: kNotFound (no such file), kUnavailable (libllama could not load it).
    static Result<std::unique_ptr<Model>> Load(const ModelOptions& options);

    ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    // Tokenizes UTF-8 text, by default without parsing special-token markup (data is data;
    // `parse_special` is for prompts built by a chat template). Prepends BOS when `add_bos` and
    // the model's tokenizer wants one. Errors: kInvalidArgument for invalid UTF-8.
    Result<Tokens> Tokenize(std::string_view text, bool add_bos, bool parse_special = false) const;

    // The chat template stored in the GGUF (tokenizer.chat_template), if any.
    std::optional<std::string> ChatTemplate() const;

    // Renders a conversation with the model's chat template, ending with the assistant's turn
    // opened. kInvalidArgument when the model has no template or libllama does not know it.
    Result<std::string> ApplyChatTemplate(
        const std::vector<std::pair<std::string, std::string>>& messages) const;  // role, content

    // The bytes of one token; may be an incomplete UTF-8 sequence on its own.
    std::string Piece(Token token) const;

    // The text of a token sequence (pieces concatenated; no special tokens rendered).
    std::string Detokenize(std::span<const Token> tokens) const;

    bool IsEndOfGeneration(Token token) const;

    bool AddsBos() const;

    Token Bos() const;

    int n_vocab() const;

    int n_ctx_train() const;

    std::uint64_t n_params() const;

    std::uint64_t size_bytes() const;

    // Identifies the weights: FNV-1a over the file size, the parameter count and 17 slices of
    // 4 KiB spread evenly through the file (header, tensors, end). Two files with the same shape
    // but other weights differ with near certainty. Reads the file; call once.
    std::uint64_t Fingerprint() const;

    // "qwen2 ?B Q8_0" style description from libllama.
    std::string Description() const;

    const std::string& path() const { return path_; }

    llama_model* raw() const { return model_; }

private:
    Model(llama_model* model, std::string path);

    llama_model* model_;
    const llama_vocab* vocab_;
    std::string path_;
};

}  // namespace kvs
