#pragma once
// The fixture of the flash model tests (flash_test.cpp, flash_join_test.cpp): engine options
// without a time cap, distinct questions, and helpers that step until an evaluation runs and read
// the flash metrics.

#include <gtest/gtest.h>
#include <string>
#include <vector>

#include "model/test_models.h"

namespace kvs::test {

class Flash : public ::testing::TestWithParam<std::string> {
protected:
    EngineOptions Options() const {
        EngineOptions o = TestOptions(GetParam());
        o.flash_max_share = 1.0;  // no time cap unless a test sets one
        return o;
    }

    // Question i (distinct for every i).
    static FlashOptions F(int i, int max_tokens = 10) {
        FlashOptions f;
        f.question = Question(i) + (i < 4 ? "" : " (" + std::to_string(i) + ")");
        f.max_tokens = max_tokens;
        return f;
    }

    // The live query a cached answer must equal (cached answers refused).
    static QueryOptions Live(const FlashOptions& f) {
        QueryOptions q = FlashQuery(f);
        q.allow_cached = false;
        q.keep_logits = true;
        return q;
    }

    static std::vector<EngineEvent> FlashEvents(Engine& e) {
        std::vector<EngineEvent> out;
        for (EngineEvent& ev : e.TakeEvents()) {
            if (ev.kind == EngineEvent::Kind::kFlash) {
                out.push_back(std::move(ev));
            }
        }
        return out;
    }

    // Steps until a flash evaluation is running (at most 1,000 steps).
    static void StepUntilEvaluating(Engine& e) {
        for (int i = 0; i < 1000 && e.metrics().GetGauge("kvs_flash_running", "").value() == 0;
             ++i) {
            e.Step();
        }
    }

    static std::uint64_t CounterValue(Engine& e, const char* name) {
        return e.metrics().GetCounter(name, "").value();
    }
};

}  // namespace kvs::test
