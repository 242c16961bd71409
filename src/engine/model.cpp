#include "engine/model.h"

#include "common/utf8.h"
#include "engine/backend.h"

#include <llama.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

namespace kvs {

Result<std::unique_ptr<Model>> Model::Load(const ModelOptions& options) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(options.path, ec)) {
        return NotFound("model file not found: " + options.path);
    }
    KV_RETURN_IF_ERROR(EnsureBackend());
    llama_model_params params = llama_model_default_params();
    params.n_gpu_layers = options.n_gpu_layers;
    params.use_extra_bufts = options.repack_weights;
    llama_model* model = llama_model_load_from_file(options.path.c_str(), params);
    if (model == nullptr) {
        return Status(StatusCode::kUnavailable, "libllama could not load model " + options.path);
    }
    return std::unique_ptr<Model>(new Model(model, options.path));
}

Model::Model(llama_model* model, std::string path)
    : model_(model), vocab_(llama_model_get_vocab(model)), path_(std::move(path)) {}

Model::~Model() {
    llama_model_free(model_);
}

Result<Tokens> Model::Tokenize(std::string_view text, bool add_bos, bool parse_special) const {
    if (!IsValidUtf8(text)) {
        return InvalidArgument("text is not valid UTF-8");
    }
    if (text.size() > static_cast<std::size_t>(INT32_MAX / 2)) {
        return TooLarge("text too large to tokenize");
    }
    const auto n_text = static_cast<int32_t>(text.size());
    // A token covers at least one byte, plus BOS: n_text + 2 always suffices.
    Tokens tokens(text.size() + 2);
    const int32_t n = llama_tokenize(vocab_, text.data(), n_text, tokens.data(),
                                     static_cast<int32_t>(tokens.size()), add_bos, parse_special);
    KV_CHECK(n >= 0, "llama_tokenize needed more room than n_bytes + 2");
    tokens.resize(static_cast<std::size_t>(n));
    return tokens;
}

std::optional<std::string> Model::ChatTemplate() const {
    const char* t = llama_model_chat_template(model_, nullptr);
    if (t == nullptr) {
        return std::nullopt;
    }
    return std::string(t);
}

Result<std::string> Model::ApplyChatTemplate(
    const std::vector<std::pair<std::string, std::string>>& messages) const {
    const auto tmpl = ChatTemplate();
    if (!tmpl) {
        return InvalidArgument(
            "this model has no chat template (tokenizer.chat_template); use "
            "/v1/completions with your own prompt format");
    }
    std::vector<llama_chat_message> chat;
    std::size_t n_bytes = tmpl->size();
    for (const auto& [role, content] : messages) {
        chat.push_back({role.c_str(), content.c_str()});
        n_bytes += role.size() + content.size();
    }
    std::string out(2 * n_bytes + 256, '\0');
    for (int attempt = 0; attempt < 2; ++attempt) {
        const int32_t n = llama_chat_apply_template(tmpl->c_str(), chat.data(), chat.size(),
                                                    /*add_ass=*/true, out.data(),
                                                    static_cast<int32_t>(out.size()));
        if (n < 0) {
            return InvalidArgument(
                "llama.cpp does not support this model's chat template; use /v1/completions");
        }
        if (static_cast<std::size_t>(n) <= out.size()) {
            out.resize(static_cast<std::size_t>(n));
            return out;
        }
        out.resize(static_cast<std::size_t>(n));
    }
    return Internal("the chat template's output kept growing");
}

std::string Model::Piece(Token token) const {
    char buf[256];
    int32_t n = llama_token_to_piece(vocab_, token, buf, sizeof(buf), /*lstrip=*/0,
                                     /*special=*/false);
    if (n >= 0) {
        return std::string(buf, static_cast<std::size_t>(n));
    }
    std::string big(static_cast<std::size_t>(-n), '\0');
    n = llama_token_to_piece(vocab_, token, big.data(), -n, 0, false);
    KV_CHECK(n >= 0, "llama_token_to_piece failed twice");
    big.resize(static_cast<std::size_t>(n));
    return big;
}

std::string Model::Detokenize(std::span<const Token> tokens) const {
    std::string text;
    for (Token t : tokens) {
        text += Piece(t);
    }
    return text;
}

bool Model::IsEndOfGeneration(Token token) const {
    return llama_vocab_is_eog(vocab_, token);
}

bool Model::AddsBos() const {
    return llama_vocab_get_add_bos(vocab_);
}

Token Model::Bos() const {
    return llama_vocab_bos(vocab_);
}

int Model::n_vocab() const {
    return llama_vocab_n_tokens(vocab_);
}

int Model::n_ctx_train() const {
    return llama_model_n_ctx_train(model_);
}

std::uint64_t Model::n_params() const {
    return llama_model_n_params(model_);
}

std::uint64_t Model::size_bytes() const {
    return llama_model_size(model_);
}

std::string Model::Description() const {
    char buf[256];
    const int32_t n = llama_model_desc(model_, buf, sizeof(buf));
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("unknown");
}

std::uint64_t Model::Fingerprint() const {
    std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
    auto mix = [&h](const void* data, std::size_t n) {
        const auto* p = static_cast<const unsigned char*>(data);
        for (std::size_t i = 0; i < n; ++i) {
            h = (h ^ p[i]) * 1099511628211ULL;
        }
    };
    std::error_code ec;
    const std::uint64_t size = std::filesystem::file_size(path_, ec);
    const std::uint64_t n_params = llama_model_n_params(model_);
    mix(&size, sizeof(size));
    mix(&n_params, sizeof(n_params));
    std::ifstream in(path_, std::ios::binary);
    constexpr int kSlices = 17;
    constexpr std::uint64_t kSlice = 4096;
    std::vector<char> buf(kSlice);
    for (int i = 0; i < kSlices && in && size > 0; ++i) {
        const std::uint64_t at = size <= kSlice ? 0 : (size - kSlice) / (kSlices - 1) * i;
        in.seekg(static_cast<std::streamoff>(at));
        in.read(buf.data(), static_cast<std::streamsize>(std::min(kSlice, size)));
        mix(buf.data(), static_cast<std::size_t>(in.gcount()));
    }
    return h;
}

}  // namespace kvs
