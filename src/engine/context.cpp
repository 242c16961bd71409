#include "engine/context.h"

#include "engine/batch.h"
#include "engine/model.h"

#include <llama.h>

#include <exception>
#include <new>
#include <string>
#include <thread>

namespace kvs {
namespace {

constexpr int kCellAlign = 256;  // libllama pads split-mode streams to this many cells

Status ValidateOptions(const ContextOptions& o) {
    if (o.n_seq_max < 1 || o.n_seq_max > 256) {
        return InvalidArgument("n_seq_max must be 1..256, got " + std::to_string(o.n_seq_max));
    }
    if (o.n_ctx_seq < 16) {
        return InvalidArgument("n_ctx_seq must be at least 16, got " + std::to_string(o.n_ctx_seq));
    }
    if (o.n_batch < 1 || o.n_ubatch < 1 || o.n_ubatch > o.n_batch) {
        return InvalidArgument("need 1 <= n_ubatch <= n_batch");
    }
    if (o.n_threads < 0) {
        return InvalidArgument("n_threads must be >= 0");
    }
    return Status::Ok();
}

// ggml's type of a cache type name, or kInvalidArgument.
Result<ggml_type> CacheType(const std::string& name) {
    for (int t = 0; t < GGML_TYPE_COUNT; ++t) {
        const char* n = ggml_type_name(static_cast<ggml_type>(t));
        if (n != nullptr && name == n) {
            return static_cast<ggml_type>(t);
        }
    }
    return InvalidArgument("unknown KV cache type '" + name + "' (f16, bf16, q8_0, ...)");
}

}  // namespace

Status DecodeStatus(int rc) {
    switch (rc) {
        case 0:
            return Status::Ok();
        case 1:
            return Status(StatusCode::kResourceExhausted, "no KV cache room for the batch");
        case 2:
            return Status(StatusCode::kAborted, "decode aborted");
        case -1:
            return InvalidArgument("libllama rejected the batch as invalid");
        case -2:
            return Internal("decode could not allocate compute memory");
        case -3:
            return Internal("decode compute failed");
        default:
            return Internal("llama_decode returned " + std::to_string(rc));
    }
}

Result<std::unique_ptr<Context>> Context::Create(const Model& model,
                                                 const ContextOptions& options) {
    KV_RETURN_IF_ERROR(ValidateOptions(options));
    auto type_k = CacheType(options.type_k);
    auto type_v = CacheType(options.type_v);
    if (!type_k.ok() || !type_v.ok()) {
        return type_k.ok() ? type_v.status() : type_k.status();
    }
    const int n_ctx_seq = (options.n_ctx_seq + kCellAlign - 1) / kCellAlign * kCellAlign;
    const int n_threads = options.n_threads > 0
                              ? options.n_threads
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

    llama_context_params p = llama_context_default_params();
    p.n_seq_max = static_cast<uint32_t>(options.n_seq_max);
    p.n_ctx = static_cast<uint32_t>(n_ctx_seq * (options.kv_unified ? 1 : options.n_seq_max));
    p.n_batch = static_cast<uint32_t>(options.n_batch);
    p.n_ubatch = static_cast<uint32_t>(options.n_ubatch);
    p.n_threads = n_threads;
    p.n_threads_batch = n_threads;
    p.flash_attn_type =
        options.flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    p.kv_unified = options.kv_unified;
    p.type_k = *type_k;
    p.type_v = *type_v;
    p.no_perf = true;

    llama_context* ctx = llama_init_from_model(model.raw(), p);
    if (ctx == nullptr) {
        return Status(StatusCode::kUnavailable, "libllama could not create a context");
    }
    return std::unique_ptr<Context>(new Context(ctx, options, model.n_vocab()));
}

Context::Context(llama_context* ctx, const ContextOptions& options, int n_vocab)
    : ctx_(ctx),
      options_(options),
      n_seq_max_(static_cast<int>(llama_n_seq_max(ctx))),
      n_ctx_seq_(static_cast<int>(llama_n_ctx_seq(ctx))),
      n_batch_(static_cast<int>(llama_n_batch(ctx))),
      n_vocab_(n_vocab),
      n_threads_(static_cast<int>(llama_n_threads(ctx))) {}

Context::~Context() {
    llama_free(ctx_);
}

Status Context::Decode(Batch& batch) {
    // An exception escaping libllama (an allocation, say) is a failed decode of unknown extent:
    // kInternal, like rc -2/-3, so the caller rolls the sequences back and the thread goes on.
    try {
        return DecodeOrThrow(batch);
    } catch (const std::exception& e) {
        return Internal(std::string("the decode threw: ") + e.what());
    } catch (...) {
        return Internal("the decode threw an exception of unknown type");
    }
}

Status Context::DecodeOrThrow(Batch& batch) {
    if (batch.empty()) {
        return InvalidArgument("empty batch");
    }
    if (faults_.throw_decodes > 0) {
        faults_.throw_decodes -= 1;
        throw std::bad_alloc();
    }
    if (faults_.fail_decodes > 0) {
        faults_.fail_decodes -= 1;
        return DecodeStatus(faults_.decode_rc);
    }
    if (batch.size() > n_batch_) {
        return TooLarge("batch of " + std::to_string(batch.size()) + " tokens exceeds n_batch " +
                        std::to_string(n_batch_));
    }
    return DecodeStatus(llama_decode(ctx_, batch.raw()));
}

bool Context::RemoveTokens(SeqId seq, Pos p0, Pos p1) {
    return llama_memory_seq_rm(llama_get_memory(ctx_), seq, p0, p1);
}

void Context::ClearSequence(SeqId seq) {
    const bool ok = llama_memory_seq_rm(llama_get_memory(ctx_), seq, -1, -1);
    KV_CHECK(ok, "removing a whole sequence cannot fail");
}

void Context::ShiftPositions(SeqId seq, Pos p0, Pos p1, Pos delta) {
    KV_CHECK(CanShift(), "ShiftPositions on a memory that cannot shift");
    llama_memory_seq_add(llama_get_memory(ctx_), seq, p0, p1, delta);
}

bool Context::CanShift() const {
    return llama_memory_can_shift(llama_get_memory(ctx_));
}

void Context::CopySequence(SeqId src, SeqId dst) {
    llama_memory_seq_cp(llama_get_memory(ctx_), src, dst, -1, -1);
}

std::vector<std::uint8_t> Context::SaveSequence(SeqId seq) const {
    std::vector<std::uint8_t> blob(llama_state_seq_get_size(ctx_, seq));
    const std::size_t n = llama_state_seq_get_data(ctx_, blob.data(), blob.size(), seq);
    KV_CHECK(n == blob.size(), "llama_state_seq_get_data wrote " + std::to_string(n) +
                                   " bytes, expected " + std::to_string(blob.size()));
    return blob;
}

std::size_t Context::SequenceBytes(SeqId seq) const {
    return llama_state_seq_get_size(ctx_, seq);
}

Status Context::RestoreSequence(SeqId seq, std::span<const std::uint8_t> blob) {
    const bool refused = faults_.fail_restores > 0;
    faults_.fail_restores -= refused ? 1 : 0;
    if (refused || llama_state_seq_set_data(ctx_, blob.data(), blob.size(), seq) == 0) {
        ClearSequence(seq);
        return Internal("libllama refused a saved sequence state of " +
                        std::to_string(blob.size()) + " bytes");
    }
    return Status::Ok();
}

Pos Context::SeqPosMax(SeqId seq) const {
    return llama_memory_seq_pos_max(llama_get_memory(ctx_), seq);
}

std::span<const float> Context::Logits(int batch_index) const {
    const float* logits = llama_get_logits_ith(ctx_, batch_index);
    KV_CHECK(logits != nullptr, "no logits for batch entry " + std::to_string(batch_index));
    return {logits, static_cast<std::size_t>(n_vocab_)};
}

std::uint64_t Context::KvFingerprint() const {
    const std::string what = "cells=" + std::to_string(n_ctx_seq_) + " k=" + options_.type_k +
                             " v=" + options_.type_v +
                             " fa=" + std::to_string(options_.flash_attn ? 1 : 0) +
                             " unified=" + std::to_string(options_.kv_unified ? 1 : 0);
    std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
    for (const char c : what) {
        h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    }
    return h;
}

}  // namespace kvs
