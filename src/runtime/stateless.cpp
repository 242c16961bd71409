// The conventional (stateless) path: the whole context is prefilled from scratch for every
// question, in a scratch sequence that is cleared afterwards. It is the baseline the demo and
// benchmarks compare against, and the oracle the tests check stateful answers with.

#include "runtime/engine.h"

namespace kvs {

Result<Answer> Engine::QueryStateless(const Tokens& context, const QueryOptions& options) {
    KV_RETURN_IF_ERROR(ValidateQuery(options));
    auto question = model_->Tokenize(options.question, false);
    if (!question.ok()) {
        return question.status();
    }
    const int n_needed = static_cast<int>(context.size() + question->size()) + options.max_tokens;
    if (n_needed > context_->n_ctx_seq()) {
        return ContextFull("the stateless prompt needs " + std::to_string(n_needed) +
                           " tokens (context + question + max_tokens); a sequence holds " +
                           std::to_string(context_->n_ctx_seq()));
    }
    Tokens prompt = context;
    prompt.insert(prompt.end(), question->begin(), question->end());
    QueryRun run(scratch_seq_, 0, std::move(prompt), options);
    KV_RETURN_IF_ERROR(RunQueries({&run, 1}));
    Answer answer = run.TakeAnswer();
    // Report the context as context, not as prompt: the whole prompt was computed.
    answer.timings.n_context_tokens = 0;
    return answer;
}

}  // namespace kvs
