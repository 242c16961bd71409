#include "bench/driver.h"

#include "common/progress.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

namespace kvs::bench {
namespace {

double SecondsSince(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

void SleepUntil(Clock::time_point t) {
    std::this_thread::sleep_until(t);
}

Clock::time_point At(Clock::time_point start, double s) {
    return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Prints warm-up messages: every change on a terminal, else at most one line per 10 s.
class WarmupLog {
public:
    explicit WarmupLog(std::string label) : label_(std::move(label)) {}

    void operator()(const std::string& what) {
        const auto now = Clock::now();
        if (what == last_ || now - printed_ < std::chrono::seconds(10)) {
            return;
        }
        std::fprintf(stderr, "%s warm-up: %s\n", label_.c_str(), what.c_str());
        last_ = what;
        printed_ = now;
    }

private:
    std::string label_;
    std::string last_;
    Clock::time_point printed_{};
};

// The measured phase's shared state: samples and counters under one lock.
struct Phase {
    const Scenario& scenario;
    const Workload& workload;
    System& system;
    SystemRun& run;
    Clock::time_point start;
    std::mutex mu;
    std::mutex question_turn;         // serial_questions: held while a question runs
    std::vector<int> bars_delivered;  // per session
    std::vector<int> bars_at_last_question;
    std::atomic<int> answered{0};
    std::atomic<int> failed{0};

    int MaxQuestions() const {
        auto it = scenario.max_questions.find(run.system);
        return it == scenario.max_questions.end() ? 1 << 30 : it->second;
    }

    void Deliver(HttpClient& client, int s, int j) {
        auto a = system.Append(client, s, workload.measured_bars[s][j]);
        std::lock_guard lock(mu);
        bars_delivered[s] = j + 1;
        run.bars += 1;
        if (a.ok()) {
            if (a->version > 0) {
                run.ack_ms.push_back(a->ack_ms);
            }
        } else {
            std::fprintf(stderr, "%s: append failed: %s\n", SystemName(run.system),
                         a.status().ToString().c_str());
        }
    }

    void Ask(HttpClient& client, int s, int q, double scheduled_s) {
        std::unique_lock turn(question_turn, std::defer_lock);
        if (scenario.serial_questions) {
            turn.lock();
        }
        QuerySample sample;
        sample.system = run.system;
        sample.round = run.round;
        sample.session = s;
        {
            std::lock_guard lock(mu);
            const int delivered = bars_delivered[s];
            sample.bars_since = delivered - bars_at_last_question[s];
            bars_at_last_question[s] = delivered;
            sample.context_tokens = workload.start_tokens[s];
            for (int j = 0; j < delivered; ++j) {
                sample.context_tokens += workload.bar_tokens[s][j];
            }
        }
        const bool flash = run.system == SystemKind::kKvstreamFlash;
        sample.question_tokens =
            flash ? workload.flash_ask_tokens[s][q] : workload.question_tokens[s][q];
        sample.at_s = SecondsSince(start);
        sample.late_ms = std::max(0.0, (sample.at_s - scheduled_s) * 1000);
        auto a =
            system.Ask(client, s, flash ? workload.flash_asks[s][q] : workload.questions[s][q]);
        if (turn.owns_lock()) {
            turn.unlock();
        }
        if (a.ok()) {
            sample.answer = *a;
            ++answered;
        } else {
            sample.error = a.status().ToString();
            ++failed;
        }
        std::lock_guard lock(mu);
        run.samples.push_back(std::move(sample));
    }
};

// Poisson mode: a feeder thread and a question thread per session.
void RunPoisson(Phase& p, int s) {
    const Scenario& sc = p.scenario;
    const double gap = 1.0 / sc.bars_per_second;
    const double offset = gap * s / static_cast<double>(sc.sessions.size());  // staggered
    std::thread feeder([&p, s, gap, offset] {
        HttpClient client("127.0.0.1", p.system.port());
        const auto& bars = p.workload.measured_bars[s];
        for (std::size_t j = 0; j < bars.size(); ++j) {
            const double t = offset + gap * static_cast<double>(j);
            if (t > p.scenario.duration_s) {
                break;
            }
            SleepUntil(At(p.start, t));
            p.Deliver(client, s, static_cast<int>(j));
        }
    });
    HttpClient client("127.0.0.1", p.system.port());
    const auto& times = p.workload.question_times[s];
    const int max_q = std::min<int>(p.MaxQuestions(), static_cast<int>(times.size()));
    for (int q = 0; q < max_q; ++q) {
        SleepUntil(At(p.start, times[q]));
        p.Ask(client, s, q, times[q]);
    }
    feeder.join();
}

// Sweep mode: one thread per session; k bars at the scenario's rate, then half a bar's gap
// later the question, for each k of after_bars.
void RunSweep(Phase& p, int s) {
    const Scenario& sc = p.scenario;
    const double gap = 1.0 / sc.bars_per_second;
    HttpClient client("127.0.0.1", p.system.port());
    double t = gap * s / static_cast<double>(sc.sessions.size());
    int j = 0;
    const int max_q = std::min<int>(p.MaxQuestions(), static_cast<int>(sc.after_bars.size()));
    for (int q = 0; q < max_q; ++q) {
        for (int k = 0; k < sc.after_bars[q]; ++k, ++j) {
            t = std::max(t, SecondsSince(p.start));
            SleepUntil(At(p.start, t));
            p.Deliver(client, s, j);
            t += gap;
        }
        const double ask_at = std::max(t - gap / 2, SecondsSince(p.start));
        SleepUntil(At(p.start, ask_at));
        p.Ask(client, s, q, ask_at);
        t = std::max(t, SecondsSince(p.start));
    }
}

// The warm-up answers as samples (marked warmup: the report leaves them out of the figures).
void AddWarmupSamples(SystemRun& run, const Workload& workload, const std::vector<Answer>& warmup) {
    for (std::size_t i = 0; i < warmup.size(); ++i) {
        QuerySample s;
        s.system = run.system;
        s.round = run.round;
        s.session = static_cast<int>(i);
        s.warmup = true;
        s.context_tokens = workload.start_tokens[i];
        s.answer = warmup[i];
        run.samples.push_back(std::move(s));
    }
}

// The measured phase's progress bar, updated every 250 ms until `done` (on its own thread).
void ShowProgress(Phase& phase, const std::string& label, const std::atomic<bool>& done) {
    const Scenario& scenario = phase.scenario;
    std::size_t expected = 0;
    for (std::size_t s = 0; s < scenario.sessions.size(); ++s) {
        expected += scenario.sweep()
                        ? std::min<std::size_t>(scenario.after_bars.size(), phase.MaxQuestions())
                        : std::min<std::size_t>(phase.workload.question_times[s].size(),
                                                phase.MaxQuestions());
    }
    ProgressBar bar(label + " questions", expected);
    while (!done) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        int bars = 0;
        {
            std::lock_guard lock(phase.mu);
            bars = phase.run.bars;
        }
        char note[96];
        std::snprintf(note, sizeof note, "%.0f s, %d bars, %d failed", SecondsSince(phase.start),
                      bars, phase.failed.load());
        bar.Update(phase.answered + phase.failed, note);
    }
    bar.Finish();
}

}  // namespace

SystemRun RunSystem(const Scenario& scenario,
                    SystemKind kind,
                    int round,
                    const ServerSetup& setup,
                    const Workload& workload) {
    SystemRun run;
    run.system = kind;
    run.round = round;
    const std::string label =
        std::string("[") + SystemName(kind) +
        (scenario.rounds > 1 ? " round " + std::to_string(round + 1) : std::string()) + "]";
    std::unique_ptr<System> system = MakeSystem(kind);

    std::fprintf(stderr, "%s starting the server\n", label.c_str());
    auto t0 = Clock::now();
    if (Status st = system->Start(setup); !st.ok()) {
        run.error = "start: " + st.ToString();
        return run;
    }
    run.start_s = SecondsSince(t0);

    t0 = Clock::now();
    std::vector<Answer> warmup;
    WarmupLog log(label);
    if (Status st = system->Prepare(workload.starts, warmup, std::ref(log)); !st.ok()) {
        run.error = "warm-up: " + st.ToString();
        system->Stop();
        return run;
    }
    run.warmup_s = SecondsSince(t0);
    AddWarmupSamples(run, workload, warmup);
    std::fprintf(stderr, "%s warm-up done in %.1f s\n", label.c_str(), run.warmup_s);

    const int n = static_cast<int>(scenario.sessions.size());
    Phase phase{scenario,
                workload,
                *system,
                run,
                Clock::now(),
                {},
                {},
                std::vector<int>(n, 0),
                std::vector<int>(n, 0)};
    const double cpu0 = system->CpuSeconds();
    const std::map<std::string, double> metrics0 = system->ScrapeMetrics();
    std::vector<std::thread> threads;
    for (int s = 0; s < n; ++s) {
        threads.emplace_back(
            [&phase, s] { phase.scenario.sweep() ? RunSweep(phase, s) : RunPoisson(phase, s); });
    }
    std::atomic<bool> done{false};
    std::thread progress([&] { ShowProgress(phase, label, done); });
    for (auto& t : threads) {
        t.join();
    }
    run.measured_s = SecondsSince(phase.start);
    run.cpu_s = system->CpuSeconds() - cpu0;
    // Over the same window as measured_s (before the wait for the last bars' ingest below).
    const std::map<std::string, double> metrics1 = system->ScrapeMetrics();
    for (const auto& [series, value] : metrics0) {  // no start figures: no deltas
        auto end = metrics1.find(series);
        if (end != metrics1.end()) {
            run.metrics_delta[series] = end->second - value;
        }
    }
    done = true;
    progress.join();
    run.ingest_lag_ms = system->IngestLagsMs();
    run.overhead_share = system->OverheadShare();
    run.peak_rss_mib = system->PeakRssMib();
    system->Stop();
    return run;
}

}  // namespace kvs::bench
