#include "bench/workload.h"

#include "common/rng.h"
#include "engine/model.h"

#include <algorithm>

namespace kvs::bench {

namespace {

struct Schedule {
    std::vector<std::string> questions;
    std::vector<double> times;  // seconds into the measured phase (Poisson scenarios)
    std::vector<std::string> flash_asks;
};

// Session s's questions: the same for every system (seeded per session). kvstream-flash asks the
// registered questions on the same schedule.
Schedule QuestionSchedule(const Scenario& scenario, std::size_t s) {
    SplitMix64 rng(scenario.seed * 1'000'003 + s);
    Schedule out;
    const std::size_t n_questions =
        scenario.sweep()
            ? scenario.after_bars.size()
            : static_cast<std::size_t>(scenario.duration_s / scenario.question_gap_s * 4 + 8);
    for (double t = 0; out.questions.size() < n_questions;) {
        if (!scenario.sweep()) {
            t += rng.Exponential(scenario.question_gap_s);
            if (t >= scenario.duration_s) {
                break;
            }
            out.times.push_back(t);
        }
        out.questions.push_back(scenario.questions[rng.Below(scenario.questions.size())]);
    }
    for (std::size_t q = 0; q < out.questions.size() && !scenario.flash_questions.empty(); ++q) {
        out.flash_asks.push_back(
            scenario.flash_questions[rng.Below(scenario.flash_questions.size())]);
    }
    return out;
}

}  // namespace

Result<PreparedWorkload> PrepareWorkload(const Scenario& scenario,
                                         const std::string& market_dir,
                                         const std::string& model_path) {
    auto model = Model::Load({model_path});
    if (!model.ok()) {
        return model.status();
    }
    auto count = [&](const std::string& text) -> Result<int> {
        auto t = (*model)->Tokenize(text, false);
        if (!t.ok()) {
            return t.status();
        }
        return static_cast<int>(t->size());
    };
    PreparedWorkload p;
    Workload& w = p.workload;
    const int n_measured = scenario.MeasuredBars();
    int max_question = 0;
    for (const auto& q : scenario.questions) {
        max_question = std::max(max_question, *count(q));
    }
    for (const auto& q : scenario.flash_questions) {
        max_question = std::max(max_question, *count(q));
    }
    for (std::size_t s = 0; s < scenario.sessions.size(); ++s) {
        const SessionSpec& spec = scenario.sessions[s];
        // Enough bars for the history at ~10 tokens a bar at least, plus the measured phase.
        const std::size_t n_bars =
            static_cast<std::size_t>(spec.context_tokens) / 10 + n_measured + 1;
        auto feed = LoadFeed(spec, market_dir, scenario.seed + s, n_bars);
        if (!feed.ok()) {
            return feed.status();
        }
        SessionStart start;
        start.prefix = feed->prefix;
        int tokens = (*model)->AddsBos() ? 1 : 0;
        tokens += *count(feed->prefix);
        std::size_t b = 0;
        for (; b < feed->bars.size() && tokens < spec.context_tokens; ++b) {
            const std::string line = RenderBar(feed->bars[b]);
            tokens += *count(line);
            start.history.push_back(feed->bars[b]);
            start.history_text += line;
        }
        if (feed->bars.size() - b < static_cast<std::size_t>(n_measured)) {
            return InvalidArgument("feed " + spec.feed + " is too short for the scenario");
        }
        w.start_tokens.push_back(tokens);
        std::vector<Bar> measured(feed->bars.begin() + static_cast<std::ptrdiff_t>(b),
                                  feed->bars.begin() + static_cast<std::ptrdiff_t>(b) + n_measured);
        std::vector<int> bar_tokens;
        int measured_tokens = 0;
        for (const Bar& bar : measured) {
            bar_tokens.push_back(*count(RenderBar(bar)));
            measured_tokens += bar_tokens.back();
        }
        auto [questions, times, flash_asks] = QuestionSchedule(scenario, s);
        start.first_question = scenario.questions.front();
        std::vector<int> question_tokens;
        for (const auto& q : questions) {
            question_tokens.push_back(*count(q));
        }
        std::vector<int> flash_tokens;
        for (const auto& q : flash_asks) {
            flash_tokens.push_back(*count(q));
        }
        p.ctx_per_session = std::max(p.ctx_per_session, tokens + measured_tokens + max_question +
                                                            scenario.answer_tokens + 64);
        w.starts.push_back(std::move(start));
        w.measured_bars.push_back(std::move(measured));
        w.bar_tokens.push_back(std::move(bar_tokens));
        w.questions.push_back(std::move(questions));
        w.question_tokens.push_back(std::move(question_tokens));
        w.flash_asks.push_back(std::move(flash_asks));
        w.flash_ask_tokens.push_back(std::move(flash_tokens));
        w.question_times.push_back(std::move(times));
    }
    p.ctx_per_session = (p.ctx_per_session + 255) / 256 * 256;
    return p;
}

}  // namespace kvs::bench
