#include "model/test_models.h"

#include "engine/backend.h"
#include "engine/model_maker.h"
#include "feed/market.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <gtest/gtest.h>
#include <thread>

namespace kvs::test {

std::vector<std::string> TestModelNames() {
    return {kStories, kTwin};
}

namespace {

std::string TwinPath() {
    const std::string dir = KVSTREAM_TEST_MODEL_DIR;
    const std::string path = dir + "/smollm2-135m-4layer-q8_0.gguf";
    if (std::filesystem::exists(path)) {
        return path;
    }
    std::filesystem::create_directories(dir);
    MakeModelOptions o;
    o.shape = "smollm2-135m";
    o.out_path = path;
    o.type = WeightType::kQ8_0;
    o.seed = 7;
    o.n_layer = 4;
    const Status st = MakeModel(o);
    if (!st.ok()) {
        ADD_FAILURE() << "could not make the shape twin: " << st.ToString();
        return "";
    }
    return path;
}

}  // namespace

std::string ModelPath(const std::string& name) {
    if (name == kTwin) {
        return TwinPath();
    }
    const std::string path = std::string(KVSTREAM_SHARED_DIR) + "/models/stories260K.gguf";
    if (!std::filesystem::exists(path)) {
        ADD_FAILURE() << "real-weights model missing: " << path
                      << " (the tests read ../shared/models/stories260K.gguf; set "
                         "-DKVSTREAM_SHARED_DIR to the folder that holds models/)";
        return "";
    }
    return path;
}

EngineOptions TestOptions(const std::string& name) {
    EngineOptions o;
    o.model_path = ModelPath(name);
    o.n_sessions = 17;
    o.n_ctx_session = 1024;
    o.n_batch = 128;
    o.n_threads = 1;  // ctest runs tests in parallel; ggml's worker threads spin while waiting
    return o;
}

std::unique_ptr<Engine> OpenEngine(const EngineOptions& options) {
    if (options.model_path.empty()) {
        return nullptr;
    }
    auto engine = Engine::Open(options);
    if (!engine.ok()) {
        ADD_FAILURE() << "Engine::Open: " << engine.status().ToString();
        return nullptr;
    }
    return std::move(engine).value();
}

std::string DataText(int i) {
    static const char* kSentences[] = {
        "Once upon a time, there was a little girl named Lily. ",
        "She loved to play outside in the park with her dog. ",
        "One day, Tom found a big red ball under the tree. ",
        "The sun was warm and the birds sang a happy song. ",
        "Mom said they could have cake after dinner. ",
        "The cat jumped on the box and looked at the fish. ",
    };
    std::string text;
    for (int k = 0; k < 3; ++k) {
        text += kSentences[(i * 5 + k * 7) % 6];
    }
    SyntheticFeed feed(DefaultSymbols(), static_cast<std::uint64_t>(100 + i));
    text += RenderBar(feed.NextBar(static_cast<std::size_t>(i) % DefaultSymbols().size()));
    return text;
}

std::string Question(int i) {
    static const char* kQuestions[] = {
        "What did Lily do next?",
        "Then the dog",
        "Is the price going up or down?",
        "Once upon a time",
    };
    return kQuestions[i % 4];
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    float worst = 0;
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        worst = std::max(worst, std::fabs(a[i] - b[i]));
    }
    return worst;
}

::testing::AssertionResult SameBits(const Answer& a, const Answer& b) {
    if (a.step_logits.empty() || b.step_logits.empty()) {
        return ::testing::AssertionFailure() << "ask both queries with keep_logits";
    }
    const Comparison c = CompareGreedy(a, b);
    if (a.tokens != b.tokens || c.verdict != Agreement::kIdentical) {
        return ::testing::AssertionFailure()
               << "the same kernels on the same numbers must give the same bits: " << c.Describe();
    }
    return ::testing::AssertionSuccess();
}

namespace {

::testing::AssertionResult Judge(const Comparison& c, const std::string& what) {
    if (c.verdict != Agreement::kIdentical) {
        std::printf("[%s] %s: %s\n", CpuBackend().variant.c_str(), what.c_str(),
                    c.Describe().c_str());
    }
    if (!c.ok()) {
        return ::testing::AssertionFailure() << what << ": " << c.Describe();
    }
    return ::testing::AssertionSuccess();
}

}  // namespace

::testing::AssertionResult Agree(const Answer& a, const Answer& b, const std::string& what) {
    if (a.step_logits.empty() || b.step_logits.empty()) {
        return ::testing::AssertionFailure() << "ask both queries with keep_logits";
    }
    return Judge(CompareGreedy(a, b), what);
}

double ConfidenceBound(const Answer& b) {
    double scale = 0;
    for (const auto& logits : b.step_logits) {
        for (float x : logits) {
            scale = std::max(scale, static_cast<double>(std::fabs(x)));
        }
    }
    return kNearTieFactor * std::max(kAbsLogitFloor, kRelLogitTolerance * scale);
}

::testing::AssertionResult AgreeTokens(const Tokens& a, const Answer& b, const std::string& what) {
    if (b.step_logits.empty()) {
        return ::testing::AssertionFailure() << "ask the second query with keep_logits";
    }
    return Judge(CompareTokens(a, b), what);
}

double CounterValue(MetricsRegistry& metrics, const char* name) {
    return static_cast<double>(metrics.GetCounter(name, "").value());
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return condition();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

}  // namespace kvs::test
