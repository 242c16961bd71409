#pragma once
// Models for the `model` tests: stories260K (real trained weights, read from ../shared) and a
// small shape twin (SmolLM2-135M's layer shape and a real GPT-2 BPE tokenizer, 4 layers, random
// weights, Q8_0), generated once into KVSTREAM_TEST_MODEL_DIR.

#include "query/agreement.h"
#include "runtime/engine.h"
#include "runtime/runtime.h"

#include <chrono>
#include <functional>
#include <future>
#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <vector>

namespace kvs::test {

inline constexpr const char* kStories = "stories260K";
inline constexpr const char* kTwin = "smollm2-twin";

// Every model the invariance tests run on.
std::vector<std::string> TestModelNames();

// The model's path; fails the current test with a clear message when it is missing.
std::string ModelPath(const std::string& name);

// Options for a test engine: 17 sessions of 1024 cells, n_batch 128, 1 thread.
EngineOptions TestOptions(const std::string& name);

// Opens an engine; fails the test (and returns null) when it cannot.
std::unique_ptr<Engine> OpenEngine(const EngineOptions& options);

// Deterministic data text number `i`: story sentences and market bar lines, varied per i.
std::string DataText(int i);

// A question in the model's idiom.
std::string Question(int i);

// A counter's value in `metrics` (0 when it was never counted).
double CounterValue(MetricsRegistry& metrics, const char* name);

// The largest absolute difference between two equally long logit vectors.
float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b);

// The determinism contract (query/agreement.h), as test assertions on two greedy answers asked
// with keep_logits. `SameBits`: the same kernels ran on the same numbers, so the tokens are equal
// and every logit is bit-identical. `Agree`: the batch shapes differ, so the answers must agree
// by the near-tie rule; it prints the comparison (largest logit difference, any near tie) with
// `what` and the CPU backend variant, so every run shows its margins.
::testing::AssertionResult SameBits(const Answer& a, const Answer& b);
::testing::AssertionResult Agree(const Answer& a, const Answer& b, const std::string& what);
// How far the confidence (mean top-two logit gap) of an answer with the same tokens may move
// between batch shapes: each gap by at most twice the logit tolerance of b's positions.
double ConfidenceBound(const Answer& b);
// `Agree` for an answer whose logits were not kept (a cached flash result), against b's logits.
::testing::AssertionResult AgreeTokens(const Tokens& a, const Answer& b, const std::string& what);

// Polls `condition` every 10 ms until it holds (true) or `limit` has passed (false). The limit
// is generous on purpose (a loaded machine, a sanitizer build): a test waits for the condition
// it then asserts, never for a fixed time.
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::seconds limit = std::chrono::seconds(120));

// Holds a Runtime's engine thread inside a command (an Info reply runs there) from construction
// until Release(): nothing else runs on the engine meanwhile, and the commands queued meanwhile
// are taken in one batch (so they start in the same step). `tenant` must own `id`.
class EngineHold {
public:
    EngineHold(Runtime& rt, TenantId tenant, SessionId id) {
        auto entered = std::make_shared<std::promise<void>>();
        auto inside = entered->get_future();
        rt.Info(tenant, id, [entered, released = released_](Result<SessionInfo>) {
            entered->set_value();
            released.wait();
        });
        inside.get();
    }

    ~EngineHold() { Release(); }

    EngineHold(const EngineHold&) = delete;
    EngineHold& operator=(const EngineHold&) = delete;

    void Release() {
        if (!released_once_) {
            released_once_ = true;
            release_.set_value();
        }
    }

private:
    std::promise<void> release_;
    std::shared_future<void> released_ = release_.get_future().share();
    bool released_once_ = false;
};

}  // namespace kvs::test
