#include "feed/market.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>
#include <vector>

#ifndef KVSTREAM_SHARED_DIR
#define KVSTREAM_SHARED_DIR ""
#endif

namespace kvs {
namespace {

namespace fs = std::filesystem;

std::vector<Bar> Bars(SyntheticFeed& feed, std::size_t symbol_index, int n) {
    std::vector<Bar> bars;
    bars.reserve(n);
    for (int i = 0; i < n; ++i) {
        bars.push_back(feed.NextBar(symbol_index));
    }
    return bars;
}

void ExpectSameBars(const std::vector<Bar>& a, const std::vector<Bar>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].time_s, b[i].time_s) << "bar " << i;
        EXPECT_EQ(a[i].open, b[i].open) << "bar " << i;
        EXPECT_EQ(a[i].high, b[i].high) << "bar " << i;
        EXPECT_EQ(a[i].low, b[i].low) << "bar " << i;
        EXPECT_EQ(a[i].close, b[i].close) << "bar " << i;
        EXPECT_EQ(a[i].volume, b[i].volume) << "bar " << i;
    }
}

// ---- Synthetic feed ----

TEST(FeedSynthetic, DefaultSymbols) {
    EXPECT_EQ(DefaultSymbols(), (std::vector<std::string>{"BTC", "ETH", "SPX", "AAPL"}));
    const SyntheticFeed feed(DefaultSymbols(), 1);
    EXPECT_EQ(feed.symbols(), DefaultSymbols());
}

TEST(FeedSynthetic, SameSeedGivesSameBarsAndTicks) {
    SyntheticFeed a(DefaultSymbols(), 42);
    SyntheticFeed b(DefaultSymbols(), 42);
    for (std::size_t s = 0; s < 4; ++s) {
        ExpectSameBars(Bars(a, s, 300), Bars(b, s, 300));
        for (int i = 0; i < 50; ++i) {
            EXPECT_EQ(RenderTick(a.NextTick(s)), RenderTick(b.NextTick(s)));
        }
    }
}

TEST(FeedSynthetic, DifferentSeedsDiffer) {
    SyntheticFeed a(DefaultSymbols(), 1);
    SyntheticFeed b(DefaultSymbols(), 2);
    for (std::size_t s = 0; s < 4; ++s) {
        const std::vector<Bar> bars_a = Bars(a, s, 50);
        const std::vector<Bar> bars_b = Bars(b, s, 50);
        int same_closes = 0;
        for (std::size_t i = 0; i < bars_a.size(); ++i) {
            same_closes += bars_a[i].close == bars_b[i].close ? 1 : 0;
        }
        EXPECT_LT(same_closes, 5) << a.symbols()[s];
    }
}

TEST(FeedSynthetic, SymbolsHaveIndependentStreams) {
    // A symbol's bars depend on the seed and its name, not on its position or on other symbols.
    SyntheticFeed alone({"ETH"}, 7);
    SyntheticFeed mixed({"BTC", "ETH"}, 7);
    std::vector<Bar> interleaved;
    for (int i = 0; i < 100; ++i) {
        mixed.NextBar(0);
        interleaved.push_back(mixed.NextBar(1));
    }
    ExpectSameBars(Bars(alone, 0, 100), interleaved);
}

TEST(FeedSynthetic, BarsAreSane) {
    constexpr int kBarSeconds = 300;
    SyntheticFeed feed({"BTC", "ETH", "SPX", "AAPL", "EURUSD", "MADEUP"}, 3, 1'600'000'000,
                       kBarSeconds);
    for (std::size_t s = 0; s < feed.symbols().size(); ++s) {
        const std::vector<Bar> bars = Bars(feed, s, 3000);
        for (std::size_t i = 0; i < bars.size(); ++i) {
            const Bar& bar = bars[i];
            SCOPED_TRACE(RenderBar(bar));
            ASSERT_EQ(bar.symbol, feed.symbols()[s]);
            ASSERT_EQ(bar.time_s, 1'600'000'000 + static_cast<std::int64_t>(i) * kBarSeconds);
            ASSERT_GE(bar.high, std::max(bar.open, bar.close));
            ASSERT_LE(bar.low, std::min(bar.open, bar.close));
            ASSERT_GT(bar.low, 0);
            ASSERT_GT(bar.volume, 0);
            if (i > 0) {
                ASSERT_EQ(bar.open, bars[i - 1].close);  // a continuous walk
            }
        }
    }
}

TEST(FeedSynthetic, LevelsAreRealistic) {
    SyntheticFeed feed({"BTC", "ETH", "SPX", "AAPL", "EURUSD"}, 11);
    const double nominal[] = {60000, 3000, 5000, 190, 1.08};
    for (std::size_t s = 0; s < 5; ++s) {
        const Bar bar = feed.NextBar(s);
        EXPECT_NEAR(bar.open, nominal[s], nominal[s] * 0.06) << bar.symbol;
        // A week of minute bars stays within a plausible band.
        const std::vector<Bar> week = Bars(feed, s, 7 * 24 * 60);
        EXPECT_NEAR(week.back().close, nominal[s], nominal[s] * 0.5) << bar.symbol;
    }
}

TEST(FeedSynthetic, VolumeHasBursts) {
    SyntheticFeed feed({"ETH"}, 5);
    std::vector<double> volumes;
    for (const Bar& bar : Bars(feed, 0, 5000)) {
        volumes.push_back(bar.volume);
    }
    std::sort(volumes.begin(), volumes.end());
    EXPECT_GT(volumes.back(), 4 * volumes[volumes.size() / 2]);
}

TEST(FeedSynthetic, TicksAreSaneAndShareTheClock) {
    SyntheticFeed feed({"BTC", "AAPL"}, 9, 1'700'000'000, 60);
    for (std::size_t s = 0; s < 2; ++s) {
        const Bar first = feed.NextBar(s);
        std::int64_t last_ms = (first.time_s + 60) * 1000;
        double last_price = first.close;
        for (int i = 0; i < 500; ++i) {
            const Tick tick = feed.NextTick(s);
            ASSERT_EQ(tick.symbol, feed.symbols()[s]);
            ASSERT_GT(tick.time_ms, last_ms);
            ASSERT_TRUE(tick.side == 'B' || tick.side == 'S');
            ASSERT_GT(tick.price, 0);
            ASSERT_GT(tick.size, 0);
            ASSERT_NEAR(tick.price, last_price, last_price * 0.01);
            last_ms = tick.time_ms;
            last_price = tick.price;
        }
        // The next bar starts on the bar grid after the ticks.
        const Bar next = feed.NextBar(s);
        EXPECT_EQ((next.time_s - 1'700'000'000) % 60, 0);
        EXPECT_GE(next.time_s * 1000, last_ms);
    }
}

// ---- Rendering ----

TEST(FeedRender, BarFormat) {
    const Bar bar{"ETH", 1678700100, 1650.2, 1652.0, 1649.8, 1651.3, 123.4};  // 2023-03-13 09:35
    EXPECT_EQ(RenderBar(bar), "ETH 2023-03-13T09:35Z o=1650.2 h=1652 l=1649.8 c=1651.3 v=123.4\n");
}

TEST(FeedRender, DailyFlatAndVolumelessBars) {
    EXPECT_EQ(RenderBar({"VIX", 631238400, 17.24, 17.24, 17.24, 17.24, 0}),
              "VIX 1990-01-02 c=17.24\n");
    EXPECT_EQ(RenderBar({"SPX", 1572964200, 3080.8, 3081.47, 3080.3, 3080.49, 0}),
              "SPX 2019-11-05T14:30Z o=3080.8 h=3081.47 l=3080.3 c=3080.49\n");
    EXPECT_EQ(RenderBar({"WTI", 1587340800, -36.98, -36.98, -36.98, -36.98, 0}),
              "WTI 2020-04-20 c=-36.98\n");
    EXPECT_EQ(RenderBar({"X", 1678700107, 1, 2, 0.5, 1.5, 0}),
              "X 2023-03-13T09:35:07Z o=1 h=2 l=0.5 c=1.5\n");
    EXPECT_EQ(RenderBar({"X", -60, 1, 1, 1, 1, 0}), "X 1969-12-31T23:59Z c=1\n");
}

TEST(FeedRender, PrecisionFollowsThePriceLevel) {
    const auto close_text = [](double price) {
        const std::string line = RenderBar({"X", 0, price, price, price, price, 0});
        return line.substr(line.find("c=") + 2, line.size() - line.find("c=") - 3);
    };
    EXPECT_EQ(close_text(60012.5349), "60012.5");
    EXPECT_EQ(close_text(3001.23456), "3001.23");
    EXPECT_EQ(close_text(189.987654), "189.988");
    EXPECT_EQ(close_text(17.240000), "17.24");
    EXPECT_EQ(close_text(1.0593249), "1.05932");
    EXPECT_EQ(close_text(0.000123456), "0.000123456");
    EXPECT_EQ(close_text(1234567.8), "1234568");
    EXPECT_EQ(close_text(0), "0");
    // Volumes keep their integer part and up to 4 significant digits.
    EXPECT_EQ(RenderBar({"X", 0, 1, 1, 1, 1, 510301237}), "X 1970-01-01 c=1 v=510301237\n");
    EXPECT_EQ(RenderBar({"X", 0, 1, 1, 1, 1, 65.3033}), "X 1970-01-01 c=1 v=65.3\n");
    EXPECT_EQ(RenderBar({"X", 0, 1, 1, 1, 1, 0.012345}), "X 1970-01-01 c=1 v=0.01235\n");
}

TEST(FeedRender, TickFormat) {
    EXPECT_EQ(RenderTick({"BTC", 1'700'000'000'125, 60012.53, 0.25, 'B'}),
              "BTC 2023-11-14T22:13:20.125Z B 0.25@60012.5\n");
    EXPECT_EQ(RenderTick({"AAPL", 1'700'000'000'000, 189.99, 300, 'S'}),
              "AAPL 2023-11-14T22:13:20Z S 300@189.99\n");
}

TEST(FeedRender, SyntheticLinesAreOneLineEach) {
    SyntheticFeed feed(DefaultSymbols(), 3);
    for (std::size_t s = 0; s < 4; ++s) {
        const std::string bar = RenderBar(feed.NextBar(s));
        const std::string tick = RenderTick(feed.NextTick(s));
        for (const std::string& line : {bar, tick}) {
            EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
            EXPECT_EQ(line.back(), '\n');
            EXPECT_EQ(line.find('e'), std::string::npos) << "no exponent notation: " << line;
            EXPECT_LT(line.size(), 80U) << line;
        }
    }
}

// ---- Real CSV files under KVSTREAM_SHARED_DIR/data/market ----

class FeedRealCsv : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::string(KVSTREAM_SHARED_DIR) + "/data/market";
        if (!fs::is_directory(dir_)) {
            GTEST_FAIL() << "market data folder missing: '" << dir_
                         << "' (set KVSTREAM_SHARED_DIR to the shared folder that holds "
                            "data/market; see its README)";
        }
    }

    std::vector<Bar> Load(const std::string& relative_path, const std::string& symbol) {
        Result<std::vector<Bar>> bars = LoadCsvBars(dir_ + "/" + relative_path, symbol);
        EXPECT_TRUE(bars.ok()) << relative_path << ": " << bars.status().ToString();
        return bars.ok() ? std::move(bars).value() : std::vector<Bar>{};
    }

    std::string dir_;
};

struct RealFile {
    const char* path;
    std::size_t rows;
    Bar first;  // the expected first bar
};

// Row counts as in data/README.md (SP500 intraday 1,563 and daily 20; ETH 580 and 3,582;
// VIX 9,235; WTI 10,226; Brent 9,958). Times are bar open times in UTC.
const RealFile kRealFiles[] = {
    // 11/5/2019 9:30 US/Eastern (EST); column order Date,Open,Close,High,Low,Volume.
    {"01_sp500_1min_mplfinance/SP500_NOV2019_IDay.csv",
     1563,
     {"SPX", 1572964200, 3080.8, 3081.47, 3080.3, 3080.49, 0}},
    {"01_sp500_1min_mplfinance/SP500_NOV2019_Hist.csv",
     20,
     {"SPX", 1572566400, 3050.72, 3066.95, 3050.72, 3066.91, 510301237}},
    // Stamped at bar end (18:04:59.999Z), so the first bar opens at 18:00Z.
    {"03_crypto_bars_ta4j/binanceus_ethusd_5m_20230313_20230315.csv",
     580,
     {"ETH", 1678730400, 1673.58, 1677.62, 1672.44, 1672.99, 65.3033}},
    // Stamped at the end of the day (2016-05-19T00:00Z): the bar of 2016-05-18.
    {"03_crypto_bars_ta4j/coinbase_ethusd_1d_20160517_20260310.csv",
     3582,
     {"ETH", 1463529600, 12.5, 14.93, 12.5, 13.18, 482.52182654}},
    {"04_daily_pddl_datahub/vix-daily.csv",
     9235,
     {"VIX", 631238400, 17.24, 17.24, 17.24, 17.24, 0}},
    // Date,Price only: flat bars.
    {"04_daily_pddl_datahub/wti-daily.csv",
     10226,
     {"WTI", 505008000, 25.56, 25.56, 25.56, 25.56, 0}},
    {"04_daily_pddl_datahub/brent-daily.csv",
     9958,
     {"BRENT", 548467200, 18.63, 18.63, 18.63, 18.63, 0}},
};

TEST_F(FeedRealCsv, LoadsEveryBarFile) {
    for (const RealFile& file : kRealFiles) {
        SCOPED_TRACE(file.path);
        const std::vector<Bar> bars = Load(file.path, file.first.symbol);
        ASSERT_EQ(bars.size(), file.rows);
        ExpectSameBars({bars.front()}, {file.first});
        EXPECT_EQ(bars.front().symbol, file.first.symbol);
        for (std::size_t i = 0; i < bars.size(); ++i) {
            ASSERT_GE(bars[i].high, bars[i].low) << "row " << i;
            ASSERT_GE(bars[i].volume, 0) << "row " << i;
            if (i > 0) {
                ASSERT_GT(bars[i].time_s, bars[i - 1].time_s) << "row " << i;
            }
        }
    }
}

TEST_F(FeedRealCsv, TimesAreConvertedToUtc) {
    // The last SP500 minute, 11/8/2019 15:59 US/Eastern, is 20:59 UTC.
    const std::vector<Bar> spx = Load(kRealFiles[0].path, "SPX");
    ASSERT_FALSE(spx.empty());
    EXPECT_EQ(RenderBar(spx.back()),
              "SPX 2019-11-08T20:59Z o=3091.16 h=3092.91 l=3090.96 c=3092.91\n");
    // The last Binance bar ends 18:19:59.999Z.
    const std::vector<Bar> eth = Load(kRealFiles[2].path, "ETH");
    ASSERT_FALSE(eth.empty());
    EXPECT_EQ(RenderBar(eth.back()),
              "ETH 2023-03-15T18:15Z o=1625.59 h=1631.73 l=1624.2 c=1629.52 v=419.9\n");
}

TEST_F(FeedRealCsv, KeepsValuesAsRecorded) {
    // VIX 1992-02-11: the recorded open (19.24) lies above the recorded high (18.57).
    const std::vector<Bar> vix = Load("04_daily_pddl_datahub/vix-daily.csv", "VIX");
    const auto it = std::find_if(vix.begin(), vix.end(),
                                 [](const Bar& bar) { return bar.time_s == 697766400; });
    ASSERT_NE(it, vix.end());
    EXPECT_EQ(it->open, 19.24);
    EXPECT_EQ(it->high, 18.57);
    // WTI settled below zero on 2020-04-20.
    const std::vector<Bar> wti = Load("04_daily_pddl_datahub/wti-daily.csv", "WTI");
    EXPECT_TRUE(std::any_of(wti.begin(), wti.end(), [](const Bar& bar) {
        return bar.time_s == 1587340800 && bar.close == -36.98;
    }));
}

TEST_F(FeedRealCsv, RejectsAFileWithoutBars) {
    const Result<std::vector<Bar>> bars =
        LoadCsvBars(dir_ + "/04_daily_pddl_datahub/sp500-constituents.csv", "X");
    ASSERT_FALSE(bars.ok());
    EXPECT_EQ(bars.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(bars.status().message().find("no recognised"), std::string::npos);
}

// ---- CSV layouts and errors, on files written to a temporary folder ----

class FeedCsv : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() /
               ("kvs_feed_test_" + std::to_string(::getpid()) + "_" + info->name());
        fs::create_directories(dir_);
    }

    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string Write(const std::string& name, const std::string& content) {
        const fs::path path = dir_ / name;
        std::ofstream(path, std::ios::binary) << content;
        return path.string();
    }

    static std::string ErrorOf(const Result<std::vector<Bar>>& bars) {
        return bars.ok() ? "(no error)" : bars.status().ToString();
    }

    fs::path dir_;
};

TEST_F(FeedCsv, MissingFileIsNotFound) {
    const std::string path = (dir_ / "nope.csv").string();
    const Result<std::vector<Bar>> bars = LoadCsvBars(path, "X");
    ASSERT_FALSE(bars.ok());
    EXPECT_EQ(bars.status().code(), StatusCode::kNotFound);
    EXPECT_NE(bars.status().message().find(path), std::string::npos);
}

TEST_F(FeedCsv, BadNumberNamesLineAndColumn) {
    const std::string path = Write("bad.csv",
                                   "Date,Open,High,Low,Close\n"
                                   "2020-01-02,1,2,0.5,1.5\n"
                                   "2020-01-03,1,abc,0.5,1.5\n");
    const Result<std::vector<Bar>> bars = LoadCsvBars(path, "X");
    ASSERT_FALSE(bars.ok());
    EXPECT_EQ(bars.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ErrorOf(bars).find(path + ":3: bad number 'abc' in column 'High'"), std::string::npos)
        << ErrorOf(bars);
}

TEST_F(FeedCsv, OtherErrors) {
    const auto error = [&](const std::string& content) {
        return ErrorOf(LoadCsvBars(Write("f.csv", content), "X"));
    };
    EXPECT_NE(error("").find("empty file"), std::string::npos);
    EXPECT_NE(error("foo,bar\n1,2\n").find("no recognised time column"), std::string::npos);
    EXPECT_NE(error("Date,Volume\n2020-01-02,5\n").find("no recognised close/price column"),
              std::string::npos);
    EXPECT_NE(
        error("Date,Close\n2020-01-02,1\n2020-01-03\n").find(":3: expected 2 fields, found 1"),
        std::string::npos);
    EXPECT_NE(
        error("Date,Close\n2020-13-02,1\n").find(":2: bad time '2020-13-02' in column 'Date'"),
        std::string::npos);
    EXPECT_NE(error("Date,Close\n2020-01-02,\n").find(":2: bad number ''"), std::string::npos);
    EXPECT_EQ(LoadCsvBars(dir_.string(), "X").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(FeedCsv, FindsColumnsByNameInAnyLayout) {
    // BOM, CRLF, mixed case, quoted fields, extra columns, a blank line, separate date and time.
    const std::string path = Write("layout.csv",
                                   "\xEF\xBB\xBF\"Note\",VOLUME,close,LOW,High,Open,date,Time\r\n"
                                   "\"a, b\",10,1.5,0.5,2,1,2024-07-01,09:30\r\n"
                                   "\r\n"
                                   "c,,2.5,1.5,3,2,2024-07-01,09:31:30\r\n");
    const Result<std::vector<Bar>> bars = LoadCsvBars(path, "X");
    ASSERT_TRUE(bars.ok()) << ErrorOf(bars);
    ASSERT_EQ(bars->size(), 2U);
    EXPECT_EQ(RenderBar((*bars)[0]), "X 2024-07-01T09:30Z o=1 h=2 l=0.5 c=1.5 v=10\n");
    EXPECT_EQ(RenderBar((*bars)[1]), "X 2024-07-01T09:31:30Z o=2 h=3 l=1.5 c=2.5\n");
}

TEST_F(FeedCsv, TimeFormats) {
    const std::string path = Write("times.csv",
                                   "timestamp,price\n"
                                   "1700000000,1\n"     // epoch seconds
                                   "1700000060000,1\n"  // epoch milliseconds
                                   "2023-11-14T22:15:00.5Z,1\n"
                                   "2023-11-14 22:16:00+01:00,1\n"
                                   "7/1/2020 9:30,1\n"    // US/Eastern, daylight time
                                   "3/8/2020 1:59,1\n"    // US/Eastern, just before the switch
                                   "3/8/2020 3:00,1\n");  // just after it
    const Result<std::vector<Bar>> bars = LoadCsvBars(path, "X");
    ASSERT_TRUE(bars.ok()) << ErrorOf(bars);
    std::vector<std::int64_t> times;
    for (const Bar& bar : *bars) {
        times.push_back(bar.time_s);
    }
    EXPECT_EQ(times, (std::vector<std::int64_t>{1700000000, 1700000060, 1700000100, 1699996560,
                                                1593610200, 1583650740, 1583650800}));
}

TEST_F(FeedCsv, EndStampedBarsOpenOneBarEarlier) {
    const std::string path = Write("end.csv",
                                   "end_time_ms,open,high,low,close\n"
                                   "1678730699999,1,2,0.5,1.5\n"
                                   "1678730999999,1,2,0.5,1.5\n"
                                   "1678731599999,1,2,0.5,1.5\n");  // a gap of two bars
    const Result<std::vector<Bar>> bars = LoadCsvBars(path, "X");
    ASSERT_TRUE(bars.ok()) << ErrorOf(bars);
    ASSERT_EQ(bars->size(), 3U);
    EXPECT_EQ((*bars)[0].time_s, 1678730400);
    EXPECT_EQ((*bars)[1].time_s, 1678730700);
    EXPECT_EQ((*bars)[2].time_s, 1678731300);
}

}  // namespace
}  // namespace kvs
