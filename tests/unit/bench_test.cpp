// The market benchmark's own parts: scenario files, the SSE splitter, percentiles, the SVG
// writer and the feeds. The whole benchmark runs in tests/bench/market_smoke.sh.

#include "bench/http_client.h"
#include "bench/report.h"
#include "bench/scenario.h"
#include "bench/svg_plot.h"

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace kvs::bench {
namespace {

const std::string kMinimal =
    R"({"name": "t", "sessions": [{"feed": "synthetic:BTC", "context_tokens": 100}],
        "questions": ["Q?"]})";

std::string With(const std::string& field) {
    return R"({"name": "t", "sessions": [{"feed": "synthetic:BTC"}], "questions": ["Q?"], )" +
           field + "}";
}

TEST(ScenarioTest, MinimalScenarioGetsDefaults) {
    auto s = ParseScenario(kMinimal, "x.json");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->name, "t");
    EXPECT_EQ(s->sessions.size(), 1u);
    EXPECT_EQ(s->sessions[0].context_tokens, 100);
    EXPECT_EQ(s->systems.size(), 4u);  // every system but kvstream-flash (no flash questions)
    EXPECT_EQ(s->systems.front(), SystemKind::kKvstream);
    EXPECT_FALSE(s->sweep());
    EXPECT_EQ(s->MeasuredBars(), 31);  // 60 s at 0.5 bars/s, and one more
}

TEST(ScenarioTest, FlashQuestionsBringTheFlashSystem) {
    auto s = ParseScenario(With(R"("flash_questions": ["F?"])"), "x.json");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_EQ(s->systems.size(), 5u);
    EXPECT_EQ(s->systems[1], SystemKind::kKvstreamFlash);
}

TEST(ScenarioTest, SweepCountsItsBars) {
    auto s = ParseScenario(With(R"("after_bars": [30, 10, 3, 1])"), "x.json");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_TRUE(s->sweep());
    EXPECT_EQ(s->MeasuredBars(), 44);
}

TEST(ScenarioTest, BadFieldsAreNamed) {
    struct Case {
        std::string text;
        std::string message;
    };

    const std::vector<Case> cases = {
        {"[1]", "not a JSON object"},
        {"{", "not a JSON object"},
        {With(R"("sesions": 1)"), "'sesions' is not a known field"},
        {With(R"("threads": 0)"), "'threads' must be a number in [1, 512]"},
        {With(R"("threads": 1.5)"), "'threads' must be a whole number"},
        {With(R"("systems": ["vllm"])"), "unknown system 'vllm'"},
        {With(R"("after_bars": [0])"), "'after_bars' must hold whole numbers"},
        {With(R"("after_bars": [])"), "'after_bars' must be a non-empty array"},
        {With(R"("max_questions": {"stateless": 0})"), "'max_questions' must map"},
        {With(R"("systems": ["kvstream-flash"])"), "'flash_questions' must list"},
        {With(R"("questions": [""])"), "'questions' must be an array of non-empty strings"},
        {R"({"name": "t", "questions": ["Q?"], "sessions": []})", "'sessions' must be"},
        {R"({"name": "t", "questions": ["Q?"], "sessions": [{"feed": "nyse"}]})",
         "sessions[0]: 'feed' must be one of"},
        {R"({"name": "t", "questions": ["Q?"], "sessions": [{"feed": "synthetic:X", "x": 1}]})",
         "sessions[0]: 'x' is not a known field"},
        {R"({"sessions": [{"feed": "synthetic:X"}], "questions": ["Q?"]})", "'name' is required"},
    };
    for (const Case& c : cases) {
        auto s = ParseScenario(c.text, "x.json");
        ASSERT_FALSE(s.ok()) << c.text;
        EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
        EXPECT_NE(s.status().message().find(c.message), std::string::npos)
            << c.text << " -> " << s.status().message();
        EXPECT_EQ(s.status().message().rfind("x.json", 0), 0u) << s.status().message();
    }
}

TEST(ScenarioTest, TheRepositoryScenariosLoad) {
    for (const char* name : {"quick", "targets", "full", "flash-hits"}) {
        const std::string path =
            std::string(KVSTREAM_SOURCE_DIR) + "/bench/scenarios/" + name + ".json";
        auto s = LoadScenario(path);
        ASSERT_TRUE(s.ok()) << s.status().ToString();
        EXPECT_EQ(s->name, name);
        EXPECT_FALSE(s->description.empty());
    }
    EXPECT_EQ(LoadScenario("/nonexistent.json").status().code(), StatusCode::kNotFound);
}

TEST(ScenarioTest, FeedsAreRealBarsOrSeededSynthetic) {
    const std::string market = std::string(KVSTREAM_SHARED_DIR) + "/data/market";
    auto spx = LoadFeed({"sp500-1min", 0, 0}, market, 1, 5);
    ASSERT_TRUE(spx.ok()) << spx.status().ToString();
    ASSERT_EQ(spx->bars.size(), 5u);
    EXPECT_EQ(spx->bars[0].symbol, "SPX");
    EXPECT_LT(spx->bars[0].time_s, spx->bars[1].time_s);
    auto later = LoadFeed({"sp500-1min", 0, 2}, market, 1, 3);
    ASSERT_TRUE(later.ok());
    EXPECT_EQ(later->bars[0].time_s, spx->bars[2].time_s);  // start_bar skips bars

    auto a = LoadFeed({"synthetic:BTC", 0, 0}, market, 9, 4);
    auto b = LoadFeed({"synthetic:BTC", 0, 0}, market, 9, 4);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(RenderBar(a->bars[3]), RenderBar(b->bars[3]));  // seeded: the same bars
    EXPECT_EQ(LoadFeed({"eth-5min", 0, 0}, "/nonexistent", 1, 1).status().code(),
              StatusCode::kNotFound);
}

TEST(SseParserTest, SplitsEventsAcrossPieces) {
    SseParser p;
    std::vector<SseParser::Event> got;
    auto keep = [&](const SseParser::Event& e) { got.push_back(e); };
    p.Feed(": comment\n\nevent: tok", keep);
    p.Feed("en\ndata: {\"text\":", keep);
    p.Feed(" \"a\"}\n\ndata: one\r\ndata: two\r\n\r\n", keep);
    ASSERT_EQ(got.size(), 3u);  // the comment block is an event without data
    EXPECT_EQ(got[0].name, "message");
    EXPECT_EQ(got[0].data, "");
    EXPECT_EQ(got[1].name, "token");
    EXPECT_EQ(got[1].data, "{\"text\": \"a\"}");
    EXPECT_EQ(got[2].name, "message");
    EXPECT_EQ(got[2].data, "one\ntwo");  // data lines joined; CRLF read as LF
    p.Feed("data: [DONE]\n", keep);
    EXPECT_EQ(got.size(), 3u);  // incomplete until the blank line
    p.Feed("\n", keep);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[3].data, "[DONE]");
}

TEST(SvgPlotTest, DrawsSeriesOnLogAxes) {
    Plot plot{"Latency <by> context", "tokens", "seconds", true, true, {}};
    plot.series.push_back({"kvstream", SeriesColor(0), {{512, 0.2}, {8192, 1.0}}});
    plot.series.push_back(
        {"llama-server & co", SeriesColor(1), {{512, 2.0}, {0, 5.0}, {8192, -1}}});
    const std::string svg = RenderSvg(plot);
    EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
    EXPECT_NE(svg.find("</svg>"), std::string::npos);
    EXPECT_NE(svg.find("Latency &lt;by&gt; context"), std::string::npos);
    EXPECT_NE(svg.find("llama-server &amp; co"), std::string::npos);
    // Points that cannot sit on a log axis are left out: 2 + 1 markers.
    std::size_t circles = 0;
    for (std::size_t at = 0; (at = svg.find("<circle", at)) != std::string::npos; ++at) {
        ++circles;
    }
    EXPECT_EQ(circles, 3u);
    EXPECT_NE(svg.find(">1k<"), std::string::npos);  // a 1-2-5 tick on the token axis
}

}  // namespace
}  // namespace kvs::bench
