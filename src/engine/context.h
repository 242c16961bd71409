#pragma once
// One llama_context serving many sessions as separate sequences.
//
// Thread: not thread-safe. Exactly one thread (the engine thread) may call any method.
// KV layout: split mode (default) gives every sequence its own stream of n_ctx_seq() cells, so a
// token attends only over its own sequence; unified mode shares one pool of cells and makes every
// token's attention cost grow with all sessions' contexts (docs/architecture.md).

#include "common/status.h"
#include "common/tokens.h"
#include "engine/fault_plan.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

struct llama_context;

namespace kvs {

class Batch;
class Model;

struct ContextOptions {
    int n_seq_max = 4;     // sequences (slots) in the context, 1..256
    int n_ctx_seq = 4096;  // cells per sequence; rounded up to a multiple of 256 in split mode
    int n_batch = 512;     // most tokens one Decode() may carry
    int n_ubatch = 512;    // physical micro-batch
    int n_threads = 0;     // 0: every hardware thread
    bool flash_attn = false;
    bool kv_unified = false;
    std::string type_k = "f16";  // K/V cache element types, by ggml's names ("f16", "q8_0", ...);
    std::string type_v = "f16";  // a quantized V cache needs flash_attn
};

class Context {
public:
    // Errors: kInvalidArgument (options out of range), kUnavailable (libllama refused).
    static Result<std::unique_ptr<Context>> Create(const Model& model,
                                                   const ContextOptions& options);

    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    // Runs one llama_decode. Outcomes:
    //   ok                  every token is in the KV cache; requested logits are readable
    //   kTooLarge           the batch exceeds n_batch(); nothing was run
    //   kInvalidArgument    empty batch, or libllama rejected it (-1); nothing changed
    //   kResourceExhausted  no KV room for a sequence (1); nothing changed
    //   kAborted (2), kInternal (-2 allocation, -3 compute, or an exception thrown inside):
    //                       ubatches already processed stay in the cache; the caller must roll
    //                       the sequences back.
    // Never throws.
    Status Decode(Batch& batch);

    // Removes positions [p0, p1) of a sequence (p1 < 0: to the end). Returns false when libllama
    // cannot remove a partial range (never for attention-only models).
    bool RemoveTokens(SeqId seq, Pos p0, Pos p1 = -1);

    void ClearSequence(SeqId seq);

    // Shifts positions [p0, p1) of a sequence by `delta` (RoPE K-shift). Only when CanShift().
    void ShiftPositions(SeqId seq, Pos p0, Pos p1, Pos delta);

    // Whether the memory supports ShiftPositions (false for e.g. recurrent models).
    bool CanShift() const;

    // Copies every cell of `src` into `dst` (split mode: a copy of the whole stream).
    void CopySequence(SeqId src, SeqId dst);

    // The sequence's state (positions and K/V rows) as an opaque blob, valid only for this
    // model and these context options. Logits and sampler state are not included.
    std::vector<std::uint8_t> SaveSequence(SeqId seq) const;
    // The size SaveSequence's blob would have now, without copying anything.
    std::size_t SequenceBytes(SeqId seq) const;

    // Loads a SaveSequence blob into an empty sequence. kInternal when libllama refuses it
    // (corrupt, or made with another model or settings); the sequence is then cleared.
    Status RestoreSequence(SeqId seq, std::span<const std::uint8_t> blob);

    // Highest position held by the sequence, -1 when empty.
    Pos SeqPosMax(SeqId seq) const;

    // Logits of the batch entry `batch_index` from the last Decode (the entry must have asked
    // for logits). Valid until the next Decode.
    std::span<const float> Logits(int batch_index) const;

    // Identifies what a saved sequence state depends on: cells per sequence, the K/V cache
    // types in use, flash attention (V layout) and unified or split mode.
    std::uint64_t KvFingerprint() const;

    // Fault injection for tests (see FaultPlan).
    FaultPlan& faults() { return faults_; }

    int n_seq_max() const { return n_seq_max_; }

    int n_ctx_seq() const { return n_ctx_seq_; }

    int n_batch() const { return n_batch_; }

    int n_threads() const { return n_threads_; }

    const ContextOptions& options() const { return options_; }

    llama_context* raw() const { return ctx_; }

private:
    Status DecodeOrThrow(Batch& batch);  // Decode without its exception guard
    Context(llama_context* ctx, const ContextOptions& options, int n_vocab);

    llama_context* ctx_;
    ContextOptions options_;
    int n_seq_max_;
    int n_ctx_seq_;
    int n_batch_;
    int n_vocab_;
    int n_threads_;
    FaultPlan faults_;
};

// Maps a llama_decode return code to a Status (0 -> ok).
Status DecodeStatus(int rc);

}  // namespace kvs
