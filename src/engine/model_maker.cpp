#include "engine/model_maker.h"

#include "common/rng.h"
#include "engine/gguf_util.h"

#include <ggml-cpp.h>
#include <ggml.h>
#include <gguf.h>
#include <llama.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <system_error>
#include <unistd.h>

#ifndef KVSTREAM_VOCAB_DIR
#error "KVSTREAM_VOCAB_DIR must name the folder with ggml-vocab-*.gguf (set by CMake)"
#endif

namespace kvs {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxLayers = 512;                 // LLAMA_MAX_LAYERS
constexpr float kWeightHalfWidth = 0.0346410f;  // uniform(-a, a) with a = 0.02 * sqrt(3): std 0.02
constexpr std::int64_t kChunkElements = 1 << 20;  // values generated and encoded at a time
// ChatML, as llama.cpp recognises it (llm_chat_detect_template looks for "<|im_start|>").
constexpr const char* kChatMlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

// ---- Shapes --------------------------------------------------------------------------------

std::vector<ModelShape> MakeKnownShapes() {
    return {
        // HuggingFaceTB/SmolLM2-135M. Its real tokenizer has 49152 tokens; the closest real BPE
        // tokenizer in the llama.cpp tree is GPT-2's (50257), so the twin's embedding is a little
        // larger.
        {"smollm2-135m", "llama", "ggml-vocab-gpt-2.gguf", 576, 30, 9, 3, 1536, 100000.0f, 1e-5f,
         8192, false, true, false},
        // Qwen/Qwen2.5-0.5B.
        {"qwen2.5-0.5b", "qwen2", "ggml-vocab-qwen2.gguf", 896, 24, 14, 2, 4864, 1000000.0f, 1e-6f,
         32768, true, true, false},
        // meta-llama/Llama-3.2-1B (rope_scaling: llama3, factor 32, low 1, high 4, orig ctx 8192).
        {"llama3.2-1b", "llama", "ggml-vocab-llama-bpe.gguf", 2048, 16, 32, 8, 8192, 500000.0f,
         1e-5f, 131072, false, true, true},
    };
}

// Llama 3.1+ rope frequency factors, as convert_hf_to_gguf.py writes them into rope_freqs.weight.
std::vector<float> Llama3RopeFactors(int head_dim, float rope_theta) {
    constexpr double kFactor = 32.0, kLowFreqFactor = 1.0, kHighFreqFactor = 4.0;
    constexpr double kOldContext = 8192.0;
    const double low_freq_wavelen = kOldContext / kLowFreqFactor;
    const double high_freq_wavelen = kOldContext / kHighFreqFactor;
    std::vector<float> factors;
    for (int i = 0; i < head_dim; i += 2) {
        const double freq = 1.0 / std::pow(double{rope_theta}, double(i) / double(head_dim));
        const double wavelen = 2.0 * std::numbers::pi / freq;
        double factor = 1.0;
        if (wavelen > low_freq_wavelen) {
            factor = kFactor;
        } else if (wavelen >= high_freq_wavelen) {
            const double smooth =
                (kOldContext / wavelen - kLowFreqFactor) / (kHighFreqFactor - kLowFreqFactor);
            factor = 1.0 / ((1.0 - smooth) / kFactor + smooth);
        }
        factors.push_back(static_cast<float>(factor));
    }
    return factors;
}

// ---- Weight types --------------------------------------------------------------------------

struct WeightTypeInfo {
    WeightType type;
    const char* name;
    ggml_type ggml;
    llama_ftype file_type;  // general.file_type
};

constexpr WeightTypeInfo kWeightTypes[] = {
    {WeightType::kF32, "f32", GGML_TYPE_F32, LLAMA_FTYPE_ALL_F32},
    {WeightType::kF16, "f16", GGML_TYPE_F16, LLAMA_FTYPE_MOSTLY_F16},
    {WeightType::kQ8_0, "q8_0", GGML_TYPE_Q8_0, LLAMA_FTYPE_MOSTLY_Q8_0},
    {WeightType::kQ4_0, "q4_0", GGML_TYPE_Q4_0, LLAMA_FTYPE_MOSTLY_Q4_0},
};

const WeightTypeInfo& Info(WeightType type) {
    for (const WeightTypeInfo& info : kWeightTypes) {
        if (info.type == type) {
            return info;
        }
    }
    KV_FAIL("unknown WeightType");
}

// ---- Tensors -------------------------------------------------------------------------------

enum class Fill { kRandom, kOnes, kFixed };

struct TensorSpec {
    std::string name;
    std::int64_t ne0 = 0;  // row length
    std::int64_t ne1 = 1;  // rows; vectors have 1
    bool matrix = false;   // 2-D weight: stored in the chosen type; vectors stay F32
    Fill fill = Fill::kRandom;
    std::vector<float> fixed;  // the values when fill == kFixed
};

std::vector<TensorSpec> ListTensors(const ModelShape& s, int n_layer, int n_vocab) {
    const std::int64_t n_embd = s.n_embd;
    const std::int64_t head_dim = s.n_embd / s.n_head;
    const std::int64_t n_q = head_dim * s.n_head;
    const std::int64_t n_kv = head_dim * s.n_head_kv;
    std::vector<TensorSpec> t;
    t.push_back({"token_embd.weight", n_embd, n_vocab, true, Fill::kRandom, {}});
    t.push_back({"output_norm.weight", n_embd, 1, false, Fill::kOnes, {}});
    if (!s.tied_embeddings) {
        t.push_back({"output.weight", n_embd, n_vocab, true, Fill::kRandom, {}});
    }
    if (s.llama3_rope_scaling) {
        auto factors = Llama3RopeFactors(static_cast<int>(head_dim), s.rope_theta);
        t.push_back(
            {"rope_freqs.weight", head_dim / 2, 1, false, Fill::kFixed, std::move(factors)});
    }
    for (int il = 0; il < n_layer; ++il) {
        const std::string b = "blk." + std::to_string(il) + ".";
        t.push_back({b + "attn_norm.weight", n_embd, 1, false, Fill::kOnes, {}});
        t.push_back({b + "attn_q.weight", n_embd, n_q, true, Fill::kRandom, {}});
        t.push_back({b + "attn_k.weight", n_embd, n_kv, true, Fill::kRandom, {}});
        t.push_back({b + "attn_v.weight", n_embd, n_kv, true, Fill::kRandom, {}});
        if (s.qkv_bias) {
            t.push_back({b + "attn_q.bias", n_q, 1, false, Fill::kRandom, {}});
            t.push_back({b + "attn_k.bias", n_kv, 1, false, Fill::kRandom, {}});
            t.push_back({b + "attn_v.bias", n_kv, 1, false, Fill::kRandom, {}});
        }
        t.push_back({b + "attn_output.weight", n_q, n_embd, true, Fill::kRandom, {}});
        t.push_back({b + "ffn_norm.weight", n_embd, 1, false, Fill::kOnes, {}});
        t.push_back({b + "ffn_gate.weight", n_embd, s.n_ff, true, Fill::kRandom, {}});
        t.push_back({b + "ffn_up.weight", n_embd, s.n_ff, true, Fill::kRandom, {}});
        t.push_back({b + "ffn_down.weight", s.n_ff, n_embd, true, Fill::kRandom, {}});
    }
    return t;
}

// Tensor descriptors (no data) in a context that must outlive nothing: gguf_add_tensor copies them.
Status AddTensors(gguf_context* out, const std::vector<TensorSpec>& specs, WeightType type) {
    const ggml_init_params params{specs.size() * ggml_tensor_overhead(), nullptr, true};
    ggml_context_ptr ctx(ggml_init(params));
    const ggml_type matrix_type = Info(type).ggml;
    for (const TensorSpec& spec : specs) {
        if (spec.matrix && spec.ne0 % ggml_blck_size(matrix_type) != 0) {
            return InvalidArgument(spec.name + ": row length not a multiple of the block size");
        }
        ggml_tensor* t = spec.matrix
                             ? ggml_new_tensor_2d(ctx.get(), matrix_type, spec.ne0, spec.ne1)
                             : ggml_new_tensor_1d(ctx.get(), GGML_TYPE_F32, spec.ne0);
        ggml_set_name(t, spec.name.c_str());
        gguf_add_tensor(out, t);
    }
    return Status::Ok();
}

// ---- Random values -------------------------------------------------------------------------

// Uniform in [-kWeightHalfWidth, kWeightHalfWidth), two 24-bit draws per 64-bit word.
void FillRandom(SplitMix64& rng, std::vector<float>& values) {
    constexpr float kToUnit = 1.0f / 16777216.0f;  // 2^-24
    const auto to_weight = [](std::uint64_t bits24) {
        return (static_cast<float>(bits24) * kToUnit * 2.0f - 1.0f) * kWeightHalfWidth;
    };
    std::size_t i = 0;
    for (; i + 1 < values.size(); i += 2) {
        const std::uint64_t r = rng.Next();
        values[i] = to_weight(r >> 40U);
        values[i + 1] = to_weight((r >> 16U) & 0xFFFFFFU);
    }
    if (i < values.size()) {
        values[i] = to_weight(rng.Next() >> 40U);
    }
}

// ---- Writing -------------------------------------------------------------------------------

// Encodes n_rows rows of `src` as `type` into `dst` (resized to fit).
void EncodeRows(ggml_type type,
                const std::vector<float>& src,
                std::int64_t n_rows,
                std::int64_t row_len,
                std::vector<std::uint8_t>& dst) {
    dst.resize(ggml_row_size(type, row_len) * static_cast<std::size_t>(n_rows));
    if (type == GGML_TYPE_F32) {
        std::memcpy(dst.data(), src.data(), dst.size());
    } else if (type == GGML_TYPE_F16) {
        ggml_fp32_to_fp16_row(src.data(), reinterpret_cast<ggml_fp16_t*>(dst.data()),
                              static_cast<std::int64_t>(src.size()));
    } else {
        ggml_quantize_chunk(type, src.data(), dst.data(), 0, n_rows, row_len, nullptr);
    }
}

std::string ErrnoText() {
    return std::generic_category().message(errno);
}

Status WriteBytes(std::FILE* file, const void* data, std::size_t n_bytes) {
    if (n_bytes > 0 && std::fwrite(data, 1, n_bytes, file) != n_bytes) {
        return Internal(std::string("write failed: ") + ErrnoText());
    }
    return Status::Ok();
}

// Streams one tensor's data in chunks of rows, then pads to the file's alignment.
Status WriteTensor(std::FILE* file,
                   const TensorSpec& spec,
                   ggml_type type,
                   std::uint64_t seed,
                   std::size_t alignment) {
    SplitMix64 rng(seed);
    const std::int64_t rows_per_chunk = std::max<std::int64_t>(1, kChunkElements / spec.ne0);
    std::vector<float> src;
    std::vector<std::uint8_t> dst;
    std::size_t written = 0;
    for (std::int64_t row = 0; row < spec.ne1; row += rows_per_chunk) {
        const std::int64_t n_rows = std::min(rows_per_chunk, spec.ne1 - row);
        src.resize(static_cast<std::size_t>(n_rows * spec.ne0));
        if (spec.fill == Fill::kRandom) {
            FillRandom(rng, src);
        } else if (spec.fill == Fill::kOnes) {
            std::fill(src.begin(), src.end(), 1.0f);
        } else {
            src = spec.fixed;
        }
        EncodeRows(type, src, n_rows, spec.ne0, dst);
        KV_RETURN_IF_ERROR(WriteBytes(file, dst.data(), dst.size()));
        written += dst.size();
    }
    const std::vector<std::uint8_t> zeros(GGML_PAD(written, alignment) - written, 0);
    return WriteBytes(file, zeros.data(), zeros.size());
}

Status WriteContents(std::FILE* file,
                     const gguf_context* out,
                     const std::vector<TensorSpec>& specs,
                     const MakeModelOptions& options) {
    if (!gguf_write_to_file_ptr(out, file, /*only_meta=*/true)) {
        return Internal("cannot write the GGUF header of '" + options.out_path + "'");
    }
    const int total = static_cast<int>(specs.size());
    for (int i = 0; i < total; ++i) {
        // One independent stream per tensor: the file does not depend on the chunk size.
        const std::uint64_t seed = (std::uint64_t{options.seed} << 32U) | std::uint64_t(i);
        const ggml_type type = gguf_get_tensor_type(out, i);
        KV_RETURN_IF_ERROR(WriteTensor(file, specs[i], type, seed, gguf_get_alignment(out)));
        if (options.progress) {
            options.progress(i + 1, total);
        }
    }
    return Status::Ok();
}

// Writes under a unique temporary name in the destination folder, then renames into place, so
// readers (and concurrent makers of the same file) never see a partial file.
Status WriteModelFile(const gguf_context* out,
                      const std::vector<TensorSpec>& specs,
                      const MakeModelOptions& options) {
    static std::atomic<int> counter{0};
    const fs::path final_path(options.out_path);
    fs::path tmp = final_path;
    tmp += ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    std::error_code ec;
    if (final_path.has_parent_path()) {
        fs::create_directories(final_path.parent_path(), ec);
    }
    std::FILE* file = std::fopen(tmp.c_str(), "wb");
    if (file == nullptr) {
        return InvalidArgument("cannot write '" + options.out_path + "': " + ErrnoText());
    }
    Status status = WriteContents(file, out, specs, options);
    if (std::fclose(file) != 0 && status.ok()) {
        status = Internal("cannot finish '" + tmp.string() + "': " + ErrnoText());
    }
    if (status.ok()) {
        fs::rename(tmp, final_path, ec);
        if (ec) {
            status = Internal("cannot rename to '" + final_path.string() + "': " + ec.message());
        }
    }
    if (!status.ok()) {
        fs::remove(tmp, ec);
    }
    return status;
}

// ---- Metadata ------------------------------------------------------------------------------

Result<gguf_context_ptr> LoadVocab(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
        return NotFound("vocab file not found: " + path.string());
    }
    gguf_context_ptr vocab(gguf_init_from_file(path.c_str(), {true, nullptr}));
    if (!vocab) {
        return NotFound("cannot read vocab file " + path.string());
    }
    return vocab;
}

// Copies the tokenizer.* keys of `vocab` into `out`, and nothing else.
void CopyTokenizerKeys(gguf_context* out, const gguf_context* vocab) {
    gguf_context_ptr tokenizer(gguf_init_empty());
    gguf_set_kv(tokenizer.get(), vocab);
    std::vector<std::string> others;
    for (std::int64_t i = 0; i < gguf_get_n_kv(tokenizer.get()); ++i) {
        const std::string key = gguf_get_key(tokenizer.get(), i);
        if (!key.starts_with("tokenizer.")) {
            others.push_back(key);
        }
    }
    for (const std::string& key : others) {
        gguf_remove_key(tokenizer.get(), key.c_str());
    }
    gguf_set_kv(out, tokenizer.get());
}

void SetModelKeys(gguf_context* out,
                  const ModelShape& s,
                  int n_layer,
                  int n_vocab,
                  const MakeModelOptions& options) {
    const auto u32 = [&](const char* key, int value) {
        gguf_set_val_u32(out, (s.arch + "." + key).c_str(), static_cast<std::uint32_t>(value));
    };
    const std::string name = s.name + " shape twin (random weights, seed " +
                             std::to_string(options.seed) + ", " + std::to_string(n_layer) +
                             " layers; not a trained model)";
    gguf_set_val_str(out, "general.architecture", s.arch.c_str());
    gguf_set_val_str(out, "general.name", name.c_str());
    gguf_set_val_u32(out, "general.file_type", Info(options.type).file_type);
    gguf_set_val_u32(out, "general.quantization_version", GGML_QNT_VERSION);
    u32("vocab_size", n_vocab);
    u32("context_length", s.n_ctx_train);
    u32("embedding_length", s.n_embd);
    u32("block_count", n_layer);
    u32("feed_forward_length", s.n_ff);
    u32("attention.head_count", s.n_head);
    u32("attention.head_count_kv", s.n_head_kv);
    u32("rope.dimension_count", s.n_embd / s.n_head);
    gguf_set_val_f32(out, (s.arch + ".rope.freq_base").c_str(), s.rope_theta);
    gguf_set_val_f32(out, (s.arch + ".attention.layer_norm_rms_epsilon").c_str(), s.rms_eps);
}

}  // namespace

const std::vector<ModelShape>& KnownShapes() {
    static const std::vector<ModelShape> shapes = MakeKnownShapes();
    return shapes;
}

const ModelShape* FindShape(std::string_view name) {
    for (const ModelShape& shape : KnownShapes()) {
        if (shape.name == name) {
            return &shape;
        }
    }
    return nullptr;
}

Result<WeightType> ParseWeightType(std::string_view name) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const WeightTypeInfo& info : kWeightTypes) {
        if (lower == info.name) {
            return info.type;
        }
    }
    return InvalidArgument("unknown weight type '" + std::string(name) +
                           "' (f32, f16, q8_0, q4_0)");
}

const char* WeightTypeName(WeightType type) {
    return Info(type).name;
}

std::string DefaultVocabDir() {
    return KVSTREAM_VOCAB_DIR;
}

Status MakeModel(const MakeModelOptions& options) {
    const ModelShape* shape = FindShape(options.shape);
    if (shape == nullptr) {
        std::string known;
        for (const ModelShape& s : KnownShapes()) {
            known += (known.empty() ? "" : ", ") + s.name;
        }
        return InvalidArgument("unknown shape '" + options.shape + "' (known: " + known + ")");
    }
    if (options.n_layer < 0 || options.n_layer > kMaxLayers) {
        return InvalidArgument("layer count must be in 1.." + std::to_string(kMaxLayers));
    }
    if (options.out_path.empty()) {
        return InvalidArgument("no output path");
    }
    const int n_layer = options.n_layer > 0 ? options.n_layer : shape->n_layer;
    const fs::path vocab_dir = options.vocab_dir.empty() ? DefaultVocabDir() : options.vocab_dir;

    Result<gguf_context_ptr> vocab = LoadVocab(vocab_dir / shape->vocab_file);
    KV_RETURN_IF_ERROR(vocab.status());
    const int n_vocab = CountTokens(vocab->get());
    if (n_vocab <= 0) {
        return NotFound("no tokenizer.ggml.tokens in " + shape->vocab_file);
    }

    const std::vector<TensorSpec> specs = ListTensors(*shape, n_layer, n_vocab);
    gguf_context_ptr out(gguf_init_empty());
    SetModelKeys(out.get(), *shape, n_layer, n_vocab, options);
    CopyTokenizerKeys(out.get(), vocab->get());
    if (gguf_find_key(out.get(), "tokenizer.chat_template") < 0) {
        // The real SmolLM2-Instruct models chat in ChatML; the twin gets the same template so the
        // chat endpoint can be exercised (its markers are plain text to the GPT-2 tokenizer).
        gguf_set_val_str(out.get(), "tokenizer.chat_template", kChatMlTemplate);
    }
    KV_RETURN_IF_ERROR(AddTensors(out.get(), specs, options.type));
    return WriteModelFile(out.get(), specs, options);
}

}  // namespace kvs
