#pragma once
// Token selection from a decode's logits. Thread: the engine thread (it reads the Context).

#include "common/status.h"
#include "common/tokens.h"

#include <cstdint>
#include <memory>

struct llama_sampler;

namespace kvs {

class Context;

struct SamplingParams {
    float temperature = 0.0F;  // 0: greedy (argmax), reproducible
    float top_p = 1.0F;        // nucleus mass, (0, 1]
    int top_k = 0;             // 0: off
    std::uint32_t seed = 0;    // for temperature > 0
};

// kInvalidArgument when a field is out of range.
Status ValidateSampling(const SamplingParams& params);

class Sampler {
public:
    // `params` must pass ValidateSampling.
    explicit Sampler(const SamplingParams& params);
    ~Sampler();
    Sampler(Sampler&& other) noexcept;
    Sampler(const Sampler&) = delete;
    Sampler& operator=(const Sampler&) = delete;
    Sampler& operator=(Sampler&&) = delete;

    // Picks the next token from the logits of batch entry `batch_index` and records it.
    Token Sample(const Context& context, int batch_index);

private:
    llama_sampler* chain_;
};

}  // namespace kvs
