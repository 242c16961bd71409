#include "bench/scenario.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace kvs::bench {
namespace {

using Json = nlohmann::json;

constexpr SystemKind kAllSystems[] = {SystemKind::kKvstream, SystemKind::kKvstreamFlash,
                                      SystemKind::kStateless, SystemKind::kLlamaServer,
                                      SystemKind::kLlamaServerShared};

struct CsvFeed {
    const char* name;
    const char* file;  // under the market data folder
    const char* symbol;
    const char* what;  // for the session's prefix
};

constexpr CsvFeed kCsvFeeds[] = {
    {"sp500-1min", "01_sp500_1min_mplfinance/SP500_NOV2019_IDay.csv", "SPX",
     "S&P 500 index 1-minute bars, November 2019"},
    {"eth-5min", "03_crypto_bars_ta4j/binanceus_ethusd_5m_20230313_20230315.csv", "ETH",
     "ETH/USD 5-minute bars (Binance US), March 2023"},
    {"eth-1d", "03_crypto_bars_ta4j/coinbase_ethusd_1d_20160517_20260310.csv", "ETH",
     "ETH/USD daily bars (Coinbase)"},
    {"wti-1d", "04_daily_pddl_datahub/wti-daily.csv", "WTI", "WTI crude oil daily prices"},
    {"brent-1d", "04_daily_pddl_datahub/brent-daily.csv", "BRENT", "Brent crude oil daily prices"},
    {"vix-1d", "04_daily_pddl_datahub/vix-daily.csv", "VIX", "CBOE VIX daily bars"},
};

// Field readers that name the field in their error.
class Reader {
public:
    Reader(const Json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

    Status Unknown(std::initializer_list<const char*> known) const {
        const std::set<std::string> names(known.begin(), known.end());
        for (const auto& [key, value] : obj_.items()) {
            if (names.count(key) == 0) {
                return Bad(key, "is not a known field");
            }
        }
        return Status::Ok();
    }

    Status String(const char* field, std::string& out) const {
        if (!obj_.contains(field)) {
            return Status::Ok();
        }
        if (!obj_[field].is_string()) {
            return Bad(field, "must be a string");
        }
        out = obj_[field].get<std::string>();
        return Status::Ok();
    }

    Status Number(const char* field, double lo, double hi, double& out) const {
        if (!obj_.contains(field)) {
            return Status::Ok();
        }
        if (!obj_[field].is_number() || obj_[field].get<double>() < lo ||
            obj_[field].get<double>() > hi) {
            std::ostringstream m;
            m << "must be a number in [" << lo << ", " << hi << "]";
            return Bad(field, m.str());
        }
        out = obj_[field].get<double>();
        return Status::Ok();
    }

    template <typename Int>
    Status Integer(const char* field, double lo, double hi, Int& out) const {
        double v = static_cast<double>(out);
        KV_RETURN_IF_ERROR(Number(field, lo, hi, v));
        if (v != std::floor(v)) {
            return Bad(field, "must be a whole number");
        }
        out = static_cast<Int>(v);
        return Status::Ok();
    }

    Status Bool(const char* field, bool& out) const {
        if (!obj_.contains(field)) {
            return Status::Ok();
        }
        if (!obj_[field].is_boolean()) {
            return Bad(field, "must be true or false");
        }
        out = obj_[field].get<bool>();
        return Status::Ok();
    }

    Status Strings(const char* field, std::vector<std::string>& out) const {
        if (!obj_.contains(field)) {
            return Status::Ok();
        }
        out.clear();
        if (!obj_[field].is_array()) {
            return Bad(field, "must be an array of strings");
        }
        for (const auto& v : obj_[field]) {
            if (!v.is_string() || v.get<std::string>().empty()) {
                return Bad(field, "must be an array of non-empty strings");
            }
            out.push_back(v.get<std::string>());
        }
        return Status::Ok();
    }

    Status Bad(const std::string& field, const std::string& what) const {
        return InvalidArgument(where_ + ": '" + field + "' " + what);
    }

private:
    const Json& obj_;
    std::string where_;
};

}  // namespace

const char* SystemName(SystemKind kind) {
    switch (kind) {
        case SystemKind::kKvstream:
            return "kvstream";
        case SystemKind::kKvstreamFlash:
            return "kvstream-flash";
        case SystemKind::kStateless:
            return "stateless";
        case SystemKind::kLlamaServer:
            return "llama-server";
        case SystemKind::kLlamaServerShared:
            return "llama-server-shared";
    }
    return "?";
}

Result<SystemKind> ParseSystem(const std::string& name) {
    for (SystemKind k : kAllSystems) {
        if (name == SystemName(k)) {
            return k;
        }
    }
    return InvalidArgument("unknown system '" + name +
                           "' (kvstream, kvstream-flash, stateless, llama-server, "
                           "llama-server-shared)");
}

int Scenario::MeasuredBars() const {
    if (sweep()) {
        int n = 0;
        for (int k : after_bars) {
            n += k;
        }
        return n;
    }
    return static_cast<int>(std::ceil(duration_s * bars_per_second)) + 1;
}

namespace {

// "sessions": a non-empty array of {feed, context_tokens, start_bar}.
Status ParseSessions(const Json& doc, const Reader& r, const std::string& origin, Scenario& s) {
    if (!doc.contains("sessions") || !doc["sessions"].is_array() || doc["sessions"].empty()) {
        return r.Bad("sessions", "must be a non-empty array");
    }
    for (std::size_t i = 0; i < doc["sessions"].size(); ++i) {
        const Json& js = doc["sessions"][i];
        const std::string where = origin + ": sessions[" + std::to_string(i) + "]";
        if (!js.is_object()) {
            return InvalidArgument(where + " must be an object");
        }
        const Reader sr(js, where);
        SessionSpec spec;
        KV_RETURN_IF_ERROR(sr.Unknown({"feed", "context_tokens", "start_bar"}));
        KV_RETURN_IF_ERROR(sr.String("feed", spec.feed));
        KV_RETURN_IF_ERROR(sr.Integer("context_tokens", 0, 1 << 20, spec.context_tokens));
        KV_RETURN_IF_ERROR(sr.Integer("start_bar", 0, 1 << 24, spec.start_bar));
        bool known = spec.feed.starts_with("synthetic:") && spec.feed.size() > 10;
        for (const CsvFeed& f : kCsvFeeds) {
            known = known || spec.feed == f.name;
        }
        if (!known) {
            return sr.Bad("feed",
                          "must be one of sp500-1min, eth-5min, eth-1d, wti-1d, "
                          "brent-1d, vix-1d or synthetic:SYMBOL");
        }
        s.sessions.push_back(spec);
    }
    return Status::Ok();
}

// "after_bars" (optional): the sweep's counts of bars between questions.
Status ParseAfterBars(const Json& doc, const Reader& r, Scenario& s) {
    if (doc.contains("after_bars")) {
        if (!doc["after_bars"].is_array() || doc["after_bars"].empty()) {
            return r.Bad("after_bars", "must be a non-empty array of bar counts");
        }
        for (const auto& v : doc["after_bars"]) {
            if (!v.is_number_integer() || v.get<int>() < 1 || v.get<int>() > 100000) {
                return r.Bad("after_bars", "must hold whole numbers from 1 to 100000");
            }
            s.after_bars.push_back(v.get<int>());
        }
    }
    return Status::Ok();
}

// "systems" (default: all; kvstream-flash only with flash questions) and "max_questions".
Status ParseSystems(const Json& doc, const Reader& r, Scenario& s) {
    std::vector<std::string> names;
    KV_RETURN_IF_ERROR(r.Strings("systems", names));
    if (names.empty()) {  // every system (kvstream-flash when there are flash questions)
        for (SystemKind k : kAllSystems) {
            if (k != SystemKind::kKvstreamFlash || !s.flash_questions.empty()) {
                s.systems.push_back(k);
            }
        }
    }
    for (const auto& n : names) {
        auto kind = ParseSystem(n);
        if (!kind.ok()) {
            return r.Bad("systems", kind.status().message());
        }
        s.systems.push_back(*kind);
    }
    for (SystemKind k : s.systems) {
        if (k == SystemKind::kKvstreamFlash && s.flash_questions.empty()) {
            return r.Bad("flash_questions", "must list the questions kvstream-flash asks");
        }
    }
    if (doc.contains("max_questions")) {
        if (!doc["max_questions"].is_object()) {
            return r.Bad("max_questions", "must map system names to counts");
        }
        for (const auto& [name, v] : doc["max_questions"].items()) {
            auto kind = ParseSystem(name);
            if (!kind.ok() || !v.is_number_integer() || v.get<int>() < 1) {
                return r.Bad("max_questions",
                             "must map system names to counts of at least 1 (" + name + ")");
            }
            s.max_questions[*kind] = v.get<int>();
        }
    }
    return Status::Ok();
}

}  // namespace

Result<Scenario> ParseScenario(const std::string& text, const std::string& origin) {
    Json doc = Json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        return InvalidArgument(origin + ": not a JSON object");
    }
    Scenario s;
    const Reader r(doc, origin);
    KV_RETURN_IF_ERROR(
        r.Unknown({"name", "description", "model", "threads", "seed", "sessions", "bars_per_second",
                   "question_gap_s", "duration_s", "after_bars", "questions", "flash_questions",
                   "answer_tokens", "systems", "shared_slots", "max_questions", "rounds", "floor",
                   "serial_questions"}));
    KV_RETURN_IF_ERROR(r.String("name", s.name));
    KV_RETURN_IF_ERROR(r.String("description", s.description));
    KV_RETURN_IF_ERROR(r.String("model", s.model));
    KV_RETURN_IF_ERROR(r.Integer("threads", 1, 512, s.threads));
    KV_RETURN_IF_ERROR(r.Integer("seed", 0, 9e15, s.seed));
    KV_RETURN_IF_ERROR(r.Number("bars_per_second", 1e-4, 1000, s.bars_per_second));
    KV_RETURN_IF_ERROR(r.Number("question_gap_s", 0.01, 1e6, s.question_gap_s));
    KV_RETURN_IF_ERROR(r.Number("duration_s", 1, 1e6, s.duration_s));
    KV_RETURN_IF_ERROR(r.Integer("answer_tokens", 1, 4096, s.answer_tokens));
    KV_RETURN_IF_ERROR(r.Integer("shared_slots", 1, 256, s.shared_slots));
    KV_RETURN_IF_ERROR(r.Integer("rounds", 1, 100, s.rounds));
    KV_RETURN_IF_ERROR(r.Bool("floor", s.floor));
    KV_RETURN_IF_ERROR(r.Bool("serial_questions", s.serial_questions));
    KV_RETURN_IF_ERROR(r.Strings("questions", s.questions));
    KV_RETURN_IF_ERROR(r.Strings("flash_questions", s.flash_questions));
    if (s.name.empty()) {
        return r.Bad("name", "is required");
    }
    if (s.questions.empty()) {
        return r.Bad("questions", "must list at least one question");
    }

    KV_RETURN_IF_ERROR(ParseSessions(doc, r, origin, s));
    KV_RETURN_IF_ERROR(ParseAfterBars(doc, r, s));
    KV_RETURN_IF_ERROR(ParseSystems(doc, r, s));
    return s;
}

Result<Scenario> LoadScenario(const std::string& path) {
    std::ifstream f(path);
    if (!f) {
        return NotFound("cannot read scenario " + path);
    }
    std::stringstream text;
    text << f.rdbuf();
    return ParseScenario(text.str(), path);
}

Result<Feed> LoadFeed(const SessionSpec& spec,
                      const std::string& market_dir,
                      std::uint64_t seed,
                      std::size_t n_bars) {
    Feed feed;
    if (spec.feed.starts_with("synthetic:")) {
        const std::string symbol = spec.feed.substr(10);
        SyntheticFeed synthetic({symbol}, seed);
        for (int i = 0; i < spec.start_bar; ++i) {
            synthetic.NextBar(0);
        }
        feed.prefix = symbol +
                      " 1-minute bars (synthetic), one per line: time, open, high, low, "
                      "close, volume.\n";
        for (std::size_t i = 0; i < n_bars; ++i) {
            feed.bars.push_back(synthetic.NextBar(0));
        }
        return feed;
    }
    for (const CsvFeed& f : kCsvFeeds) {
        if (spec.feed != f.name) {
            continue;
        }
        auto bars = LoadCsvBars(market_dir + "/" + f.file, f.symbol);
        if (!bars.ok()) {
            return bars.status();
        }
        if (bars->empty()) {
            return InvalidArgument(market_dir + "/" + f.file + ": no bars");
        }
        feed.prefix = std::string(f.what) +
                      ", one per line: time (UTC), open, high, low, "
                      "close, volume.\n";
        for (std::size_t i = 0; i < n_bars; ++i) {
            feed.bars.push_back((*bars)[(spec.start_bar + i) % bars->size()]);
        }
        return feed;
    }
    return InvalidArgument("unknown feed " + spec.feed);
}

}  // namespace kvs::bench
