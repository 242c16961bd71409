// Reading what a GGUF file says about itself (header only): InspectModelFile and gguf_util.h.

#include "engine/gguf_util.h"
#include "engine/model_maker.h"

#include <ggml-cpp.h>
#include <ggml.h>
#include <gguf.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>

namespace kvs {

namespace fs = std::filesystem;

int CountTokens(const gguf_context* ctx) {
    const std::int64_t id = gguf_find_key(ctx, "tokenizer.ggml.tokens");
    if (id < 0 || gguf_get_kv_type(ctx, id) != GGUF_TYPE_ARRAY) {
        return 0;
    }
    return static_cast<int>(gguf_get_arr_n(ctx, id));
}

// Copies the tokenizer.* keys of `vocab` into `out`, and nothing else.

int GetInt(const gguf_context* ctx, const std::string& key) {
    const std::int64_t id = gguf_find_key(ctx, key.c_str());
    if (id < 0) {
        return 0;
    }
    switch (gguf_get_kv_type(ctx, id)) {
        case GGUF_TYPE_UINT32:
            return static_cast<int>(gguf_get_val_u32(ctx, id));
        case GGUF_TYPE_INT32:
            return gguf_get_val_i32(ctx, id);
        default:
            return 0;
    }
}

std::string GetString(const gguf_context* ctx, const char* key) {
    const std::int64_t id = gguf_find_key(ctx, key);
    if (id < 0 || gguf_get_kv_type(ctx, id) != GGUF_TYPE_STRING) {
        return "";
    }
    return gguf_get_val_str(ctx, id);
}

Result<ModelFileInfo> InspectModelFile(const std::string& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
        return NotFound("model file not found: " + path);
    }
    gguf_context_ptr ctx(gguf_init_from_file(path.c_str(), {true, nullptr}));
    if (!ctx) {
        return InvalidArgument("not a GGUF file: " + path);
    }
    ModelFileInfo info;
    info.arch = GetString(ctx.get(), "general.architecture");
    info.name = GetString(ctx.get(), "general.name");
    info.n_layer = GetInt(ctx.get(), info.arch + ".block_count");
    info.n_embd = GetInt(ctx.get(), info.arch + ".embedding_length");
    if (info.arch.empty() || info.n_layer <= 0 || info.n_embd <= 0) {
        return InvalidArgument(
            "not a GGUF model (no architecture, block_count or embedding_length): " + path);
    }
    info.n_head = GetInt(ctx.get(), info.arch + ".attention.head_count");
    info.n_head_kv = GetInt(ctx.get(), info.arch + ".attention.head_count_kv");
    info.n_head_kv = info.n_head_kv > 0 ? info.n_head_kv : info.n_head;
    info.n_ff = GetInt(ctx.get(), info.arch + ".feed_forward_length");
    info.n_vocab = CountTokens(ctx.get());
    info.n_tensors = gguf_get_n_tensors(ctx.get());
    for (std::int64_t i = 0; i < info.n_tensors; ++i) {
        const ggml_type type = gguf_get_tensor_type(ctx.get(), i);
        const std::size_t n_bytes = gguf_get_tensor_size(ctx.get(), i);
        info.tensor_bytes += n_bytes;
        info.n_params +=
            static_cast<std::int64_t>(n_bytes / ggml_type_size(type)) * ggml_blck_size(type);
    }
    const std::int64_t embd = gguf_find_tensor(ctx.get(), "token_embd.weight");
    info.embd_type = embd < 0 ? "" : ggml_type_name(gguf_get_tensor_type(ctx.get(), embd));
    info.file_bytes = fs::file_size(path, ec);
    return info;
}

}  // namespace kvs
