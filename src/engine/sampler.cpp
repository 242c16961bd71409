#include "engine/sampler.h"

#include "engine/context.h"

#include <llama.h>

#include <cmath>
#include <utility>

namespace kvs {

Status ValidateSampling(const SamplingParams& p) {
    if (!std::isfinite(p.temperature) || p.temperature < 0.0F || p.temperature > 100.0F) {
        return InvalidArgument("temperature must be between 0 and 100");
    }
    if (!std::isfinite(p.top_p) || p.top_p <= 0.0F || p.top_p > 1.0F) {
        return InvalidArgument("top_p must be in (0, 1]");
    }
    if (p.top_k < 0) {
        return InvalidArgument("top_k must be >= 0");
    }
    return Status::Ok();
}

Sampler::Sampler(const SamplingParams& p)
    : chain_(llama_sampler_chain_init(llama_sampler_chain_default_params())) {
    KV_CHECK(ValidateSampling(p).ok(), "Sampler built from unvalidated parameters");
    if (p.temperature == 0.0F) {
        llama_sampler_chain_add(chain_, llama_sampler_init_greedy());
        return;
    }
    if (p.top_k > 0) {
        llama_sampler_chain_add(chain_, llama_sampler_init_top_k(p.top_k));
    }
    if (p.top_p < 1.0F) {
        llama_sampler_chain_add(chain_, llama_sampler_init_top_p(p.top_p, 1));
    }
    llama_sampler_chain_add(chain_, llama_sampler_init_temp(p.temperature));
    llama_sampler_chain_add(chain_, llama_sampler_init_dist(p.seed));
}

Sampler::Sampler(Sampler&& other) noexcept : chain_(std::exchange(other.chain_, nullptr)) {}

Sampler::~Sampler() {
    if (chain_ != nullptr) {
        llama_sampler_free(chain_);
    }
}

Token Sampler::Sample(const Context& context, int batch_index) {
    // llama_sampler_sample applies the chain and accepts the chosen token.
    return llama_sampler_sample(chain_, context.raw(), batch_index);
}

}  // namespace kvs
