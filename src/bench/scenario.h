#pragma once
// A benchmark scenario: what `kvstream bench SCENARIO` replays against each system. Scenarios are
// JSON files (bench/scenarios/*.json); docs/benchmarks.md describes every field.
//
//   {"name": "quick", "model": "smollm2-135m", "threads": 2, "seed": 7,
//    "sessions": [{"feed": "sp500-1min", "context_tokens": 1024}, {"feed": "eth-5min"}],
//    "bars_per_second": 0.5, "question_gap_s": 8, "duration_s": 40,
//    "questions": ["Q: What was the last close?\nA:"], "flash_questions": [...],
//    "answer_tokens": 16, "systems": ["kvstream", "kvstream-flash", "stateless",
//    "llama-server", "llama-server-shared"], "shared_slots": 1}
//
// Questions arrive per session on a seeded Poisson schedule (mean gap question_gap_s) while bars
// arrive at bars_per_second, for duration_s; or, with "after_bars": [1, 3, 10, 30], each session
// asks once after each of those numbers of new bars (the sweep of bars between questions).

#include "common/status.h"
#include "feed/market.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kvs::bench {

// The systems a scenario can compare, in the order they run.
enum class SystemKind {
    kKvstream,           // stateful sessions: data pushed as it arrives, questions sent alone
    kKvstreamFlash,      // the registered flash questions asked (cached answers)
    kStateless,          // kvstream's OpenAI endpoint, each question with the whole context
    kLlamaServer,        // llama.cpp's llama-server, one slot per session, its prompt cache on
    kLlamaServerShared,  // llama-server with fewer slots than sessions (shared_slots)
};

const char* SystemName(SystemKind kind);
Result<SystemKind> ParseSystem(const std::string& name);

struct SessionSpec {
    std::string feed;        // "sp500-1min", "eth-5min", "eth-1d", "wti-1d", "brent-1d",
                             // "vix-1d", or "synthetic:SYMBOL"
    int context_tokens = 0;  // data in the session before the measured phase starts
    int start_bar = 0;       // where in the feed's bars the session starts
};

struct Scenario {
    std::string name;
    std::string description;
    std::string model = "smollm2-135m";  // a shape twin's name or a .gguf path
    int threads = 2;
    std::uint64_t seed = 1;
    std::vector<SessionSpec> sessions;
    double bars_per_second = 0.5;  // per session
    double question_gap_s = 10;    // Poisson mean per session (when after_bars is empty)
    double duration_s = 60;        // measured phase (when after_bars is empty)
    std::vector<int> after_bars;   // the sweep: one question after each count of new bars
    std::vector<std::string> questions;
    std::vector<std::string> flash_questions;
    int answer_tokens = 16;
    std::vector<SystemKind> systems;
    int shared_slots = 1;                     // llama-server-shared's slots
    std::map<SystemKind, int> max_questions;  // per session, for slow systems
    int rounds = 1;                           // the systems alternate this many times
    bool serial_questions = false;  // one question in flight at a time (across sessions), so
                                    // each answer's latency is its own, not shared with others
    bool floor = true;              // also run llama-bench's floor at the top depth

    bool sweep() const { return !after_bars.empty(); }

    // Bars each session receives during the measured phase.
    int MeasuredBars() const;
};

// Reads and checks a scenario file; kInvalidArgument names the file and the bad field.
Result<Scenario> LoadScenario(const std::string& path);

// Parses scenario JSON text (`origin` names it in errors).
Result<Scenario> ParseScenario(const std::string& text, const std::string& origin);

// A session's bars: the built-in feeds read CSV files under market_dir (the shared data); the
// synthetic feed is generated from the scenario's seed. kNotFound for a missing file.
struct Feed {
    std::string prefix;     // the session's first text: what the lines are
    std::vector<Bar> bars;  // at least history + measured bars, repeating the file when short
};

Result<Feed> LoadFeed(const SessionSpec& spec,
                      const std::string& market_dir,
                      std::uint64_t seed,
                      std::size_t n_bars);

}  // namespace kvs::bench
