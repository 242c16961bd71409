#include "query/flash.h"

#include "query/flash_board.h"

#include <chrono>
#include <cstdint>
#include <gtest/gtest.h>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace kvs {
namespace {

using namespace std::chrono_literals;
using Outcome = FlashLookup::Outcome;

FlashOptions Flash(std::string question) {
    FlashOptions f;
    f.question = std::move(question);
    return f;
}

SamplingParams Sampling(float temperature, float top_p, int top_k, std::uint32_t seed) {
    SamplingParams s;
    s.temperature = temperature;
    s.top_p = top_p;
    s.top_k = top_k;
    s.seed = seed;
    return s;
}

double Gap(const std::vector<float>& logits) {
    return TopTwoLogitGap(logits);
}

// ---- TrimQuestion ------------------------------------------------------------------------------

TEST(FlashTrimQuestion, RemovesSpacesAtBothEnds) {
    EXPECT_EQ(TrimQuestion("  who won?  "), "who won?");
    EXPECT_EQ(TrimQuestion(" a"), "a");
    EXPECT_EQ(TrimQuestion("a "), "a");
}

TEST(FlashTrimQuestion, RemovesTabsNewlinesAndOtherAsciiWhitespace) {
    EXPECT_EQ(TrimQuestion("\t\n\r who won? \r\n\t"), "who won?");
    EXPECT_EQ(TrimQuestion("\f\vquestion\v\f"), "question");
}

TEST(FlashTrimQuestion, KeepsInnerWhitespace) {
    EXPECT_EQ(TrimQuestion("  who   won\tthe\ngame?  "), "who   won\tthe\ngame?");
}

TEST(FlashTrimQuestion, AllWhitespaceBecomesEmpty) {
    EXPECT_EQ(TrimQuestion(""), "");
    EXPECT_EQ(TrimQuestion(" "), "");
    EXPECT_EQ(TrimQuestion(" \t\n\r\f\v  \n"), "");
}

TEST(FlashTrimQuestion, LeavesNonAsciiWhitespaceAndReturnsAViewIntoTheInput) {
    // U+00A0 (no-break space) is not ASCII whitespace.
    EXPECT_EQ(TrimQuestion("\xc2\xa0q\xc2\xa0"), "\xc2\xa0q\xc2\xa0");
    const std::string_view input = "  abc ";
    const std::string_view trimmed = TrimQuestion(input);
    EXPECT_EQ(trimmed.data(), input.data() + 2);
    EXPECT_EQ(trimmed.size(), 3U);
}

// ---- ValidateFlash -----------------------------------------------------------------------------

TEST(FlashValidate, DefaultsWithAQuestionAreOk) {
    const FlashOptions f = Flash("What happened last?");
    EXPECT_EQ(f.max_tokens, kDefaultFlashMaxTokens);
    EXPECT_EQ(kDefaultFlashMaxTokens, 32);
    EXPECT_EQ(kMaxFlashTokens, 256);
    EXPECT_TRUE(ValidateFlash(f).ok()) << ValidateFlash(f).ToString();
    EXPECT_TRUE(ValidateFlash(Flash("caf\xc3\xa9?")).ok());
    EXPECT_TRUE(ValidateFlash(Flash("  padded \n")).ok());
}

TEST(FlashValidate, RejectsEmptyAndWhitespaceOnlyQuestions) {
    EXPECT_EQ(ValidateFlash(FlashOptions{}).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ValidateFlash(Flash("")).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ValidateFlash(Flash(" ")).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ValidateFlash(Flash(" \t\n\r ")).code(), StatusCode::kInvalidArgument);
}

TEST(FlashValidate, RejectsInvalidUtf8) {
    EXPECT_EQ(ValidateFlash(Flash("\xff")).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ValidateFlash(Flash("who \xff won?")).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ValidateFlash(Flash("truncated \xc3")).code(), StatusCode::kInvalidArgument);
}

TEST(FlashValidate, MaxTokensMustBeOneTo256) {
    FlashOptions f = Flash("q");
    for (const int n : {-1, 0, kMaxFlashTokens + 1, 1000}) {
        f.max_tokens = n;
        EXPECT_EQ(ValidateFlash(f).code(), StatusCode::kInvalidArgument) << n;
    }
    for (const int n : {1, 2, kMaxFlashTokens - 1, kMaxFlashTokens}) {
        f.max_tokens = n;
        EXPECT_TRUE(ValidateFlash(f).ok()) << n;
    }
    f.max_tokens = 256;
    EXPECT_TRUE(ValidateFlash(f).ok());
    f.max_tokens = 257;
    EXPECT_FALSE(ValidateFlash(f).ok());
}

TEST(FlashValidate, RejectsBadSampling) {
    FlashOptions f = Flash("q");
    f.sampling.top_p = 0.0F;
    EXPECT_EQ(ValidateFlash(f).code(), StatusCode::kInvalidArgument);
    f = Flash("q");
    f.sampling.temperature = -1.0F;
    EXPECT_EQ(ValidateFlash(f).code(), StatusCode::kInvalidArgument);
    f = Flash("q");
    f.sampling.top_k = -1;
    EXPECT_EQ(ValidateFlash(f).code(), StatusCode::kInvalidArgument);
    f = Flash("q");
    f.sampling = Sampling(0.8F, 0.9F, 40, 7);
    EXPECT_TRUE(ValidateFlash(f).ok());
}

// ---- FlashQuery / QueryMatchesFlash ------------------------------------------------------------

TEST(FlashQuery, CopiesTrimmedQuestionMaxTokensAndSampling) {
    FlashOptions f = Flash("  \tWho is winning?\n ");
    f.max_tokens = 7;
    f.sampling = Sampling(0.7F, 0.9F, 40, 123);
    const QueryOptions q = FlashQuery(f);
    EXPECT_EQ(q.question, "Who is winning?");
    EXPECT_EQ(q.max_tokens, 7);
    EXPECT_EQ(q.sampling.temperature, 0.7F);
    EXPECT_EQ(q.sampling.top_p, 0.9F);
    EXPECT_EQ(q.sampling.top_k, 40);
    EXPECT_EQ(q.sampling.seed, 123U);
    EXPECT_TRUE(q.stop.empty());
    EXPECT_FALSE(q.keep_logits);
    EXPECT_FALSE(q.ignore_eog);
    EXPECT_TRUE(QueryMatchesFlash(q, f));
}

TEST(FlashQueryMatches, MatchesAfterTrimmingBothSides) {
    const FlashOptions f = Flash("  Who is winning? ");
    QueryOptions q = FlashQuery(f);
    q.question = "\nWho is winning?\t\t";
    EXPECT_TRUE(QueryMatchesFlash(q, f));
    q.question = "Who is winning?";
    EXPECT_TRUE(QueryMatchesFlash(q, f));
}

TEST(FlashQueryMatches, DifferentTextDoesNotMatch) {
    const FlashOptions f = Flash("Who is winning?");
    QueryOptions q = FlashQuery(f);
    q.question = "Who is losing?";
    EXPECT_FALSE(QueryMatchesFlash(q, f));
    q.question = "who is winning?";
    EXPECT_FALSE(QueryMatchesFlash(q, f));
    q.question = "Who is  winning?";
    EXPECT_FALSE(QueryMatchesFlash(q, f));
}

TEST(FlashQueryMatches, MaxTokensMustBeEqual) {
    const FlashOptions f = Flash("q");
    // A default query (max_tokens 64) does not ask what a default flash (32) evaluates.
    QueryOptions q;
    q.question = "q";
    EXPECT_FALSE(QueryMatchesFlash(q, f));
    q.max_tokens = kDefaultFlashMaxTokens;
    EXPECT_TRUE(QueryMatchesFlash(q, f));
    q.max_tokens = kDefaultFlashMaxTokens + 1;
    EXPECT_FALSE(QueryMatchesFlash(q, f));
}

TEST(FlashQueryMatches, SamplingMustBeEqual) {
    FlashOptions f = Flash("q");
    f.sampling = Sampling(0.5F, 0.9F, 10, 42);
    const QueryOptions base = FlashQuery(f);
    ASSERT_TRUE(QueryMatchesFlash(base, f));

    QueryOptions q = base;
    q.sampling.temperature = 0.6F;
    EXPECT_FALSE(QueryMatchesFlash(q, f));
    q = base;
    q.sampling.seed = 43;
    EXPECT_FALSE(QueryMatchesFlash(q, f));
    q = base;
    q.sampling.top_p = 0.8F;
    EXPECT_FALSE(QueryMatchesFlash(q, f));
    q = base;
    q.sampling.top_k = 11;
    EXPECT_FALSE(QueryMatchesFlash(q, f));
}

TEST(FlashQueryMatches, StopStringsLogitsAndIgnoreEogNeverMatch) {
    const FlashOptions f = Flash("q");
    const QueryOptions base = FlashQuery(f);
    QueryOptions q = base;
    q.stop = {"\n"};
    EXPECT_FALSE(QueryMatchesFlash(q, f));
    q = base;
    q.keep_logits = true;
    EXPECT_FALSE(QueryMatchesFlash(q, f));
    q = base;
    q.ignore_eog = true;
    EXPECT_FALSE(QueryMatchesFlash(q, f));
}

TEST(FlashQueryMatches, StalenessAndCacheSettingsDoNotMatter) {
    const FlashOptions f = Flash("q");
    QueryOptions q = FlashQuery(f);
    q.max_staleness = 3;
    q.max_staleness_ms = 250;
    q.allow_cached = false;
    EXPECT_TRUE(QueryMatchesFlash(q, f));
}

// ---- TopTwoLogitGap ----------------------------------------------------------------------------

TEST(FlashTopTwoLogitGap, FewerThanTwoLogitsGiveZero) {
    EXPECT_EQ(Gap({}), 0.0);
    EXPECT_EQ(Gap({5.0F}), 0.0);
    EXPECT_EQ(Gap({-3.0F}), 0.0);
}

TEST(FlashTopTwoLogitGap, GapBetweenLargestAndSecondLargest) {
    EXPECT_DOUBLE_EQ(Gap({1.0F, 3.0F, 2.0F}), 1.0);
    EXPECT_DOUBLE_EQ(Gap({1.0F, 2.0F}), 1.0);
    EXPECT_DOUBLE_EQ(Gap({2.0F, 9.0F, 1.0F, 7.0F}), 2.0);
    EXPECT_DOUBLE_EQ(Gap({0.25F, 0.0F, 1.0F, 0.5F}), 0.5);
}

// Masked (infinite) and NaN logits are ignored.
TEST(FlashTopTwoLogitGap, NonFiniteLogitsAreIgnored) {
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    EXPECT_EQ(TopTwoLogitGap(std::vector<float>{-inf, -inf}), 0.0);
    EXPECT_EQ(TopTwoLogitGap(std::vector<float>{-inf, 1.0F}), 0.0);
    EXPECT_DOUBLE_EQ(TopTwoLogitGap(std::vector<float>{-inf, 1.0F, nan, 3.0F, inf}), 2.0);
}

TEST(FlashTopTwoLogitGap, TiesGiveZero) {
    EXPECT_EQ(Gap({3.0F, 3.0F}), 0.0);
    EXPECT_EQ(Gap({3.0F, 3.0F, 1.0F}), 0.0);
    EXPECT_EQ(Gap({1.0F, 3.0F, 2.0F, 3.0F}), 0.0);
}

TEST(FlashTopTwoLogitGap, NegativeValues) {
    EXPECT_DOUBLE_EQ(Gap({-5.0F, -1.0F, -3.0F}), 2.0);
    EXPECT_DOUBLE_EQ(Gap({-2.0F, 1.5F}), 3.5);
}

TEST(FlashTopTwoLogitGap, MaxAtFirstAndLastPosition) {
    EXPECT_DOUBLE_EQ(Gap({9.0F, 1.0F, 4.0F}), 5.0);
    EXPECT_DOUBLE_EQ(Gap({1.0F, 4.0F, 9.0F}), 5.0);
    // The old maximum becomes the second largest when a larger one follows.
    EXPECT_DOUBLE_EQ(Gap({4.0F, 1.0F, 9.0F}), 5.0);
    EXPECT_DOUBLE_EQ(Gap({9.0F, 4.0F, 1.0F}), 5.0);
}

// ---- FinishOvertakenEvaluation -----------------------------------------------------------------

TEST(FlashFinishOvertaken, Constants) {
    EXPECT_EQ(kFinishWithinTokens, 4);
    EXPECT_EQ(kMaxConsecutiveDrops, 2);
}

TEST(FlashFinishOvertaken, PrefillingDropsUntilTooManyDrops) {
    EXPECT_FALSE(FinishOvertakenEvaluation(true, 0, 32, 0));
    EXPECT_FALSE(FinishOvertakenEvaluation(true, 0, 32, kMaxConsecutiveDrops - 1));
    // Even when max_tokens is within kFinishWithinTokens: the rule is for decoding only.
    EXPECT_FALSE(FinishOvertakenEvaluation(true, 0, kFinishWithinTokens, 0));
    EXPECT_FALSE(FinishOvertakenEvaluation(true, 0, 1, 0));
    EXPECT_TRUE(FinishOvertakenEvaluation(true, 0, 32, kMaxConsecutiveDrops));
    EXPECT_TRUE(FinishOvertakenEvaluation(true, 0, 32, kMaxConsecutiveDrops + 1));
}

TEST(FlashFinishOvertaken, DecodingFinishesWithinKFinishWithinTokens) {
    constexpr int kMax = 32;
    EXPECT_TRUE(FinishOvertakenEvaluation(false, kMax - kFinishWithinTokens, kMax, 0));
    EXPECT_TRUE(FinishOvertakenEvaluation(false, kMax - 1, kMax, 0));
    EXPECT_TRUE(FinishOvertakenEvaluation(false, kMax, kMax, 0));
    EXPECT_FALSE(FinishOvertakenEvaluation(false, kMax - kFinishWithinTokens - 1, kMax, 0));
    EXPECT_FALSE(FinishOvertakenEvaluation(false, 0, kMax, 0));
    EXPECT_FALSE(FinishOvertakenEvaluation(false, 1, kMax, kMaxConsecutiveDrops - 1));
    // A short max_tokens is within reach from the first decoded token.
    EXPECT_TRUE(FinishOvertakenEvaluation(false, 0, kFinishWithinTokens, 0));
    EXPECT_FALSE(FinishOvertakenEvaluation(false, 0, kFinishWithinTokens + 1, 0));
}

TEST(FlashFinishOvertaken, DecodingFinishesAfterTooManyDrops) {
    EXPECT_TRUE(FinishOvertakenEvaluation(false, 0, 32, kMaxConsecutiveDrops));
    EXPECT_TRUE(FinishOvertakenEvaluation(false, 1, 256, kMaxConsecutiveDrops + 3));
}

// ---- FlashBudget -------------------------------------------------------------------------------

TEST(FlashBudget, ShareOneIsNeverCapped) {
    FlashBudget b(1.0);
    EXPECT_FALSE(b.capped());
    EXPECT_DOUBLE_EQ(b.share(), 1.0);
    EXPECT_TRUE(b.CanStart());
    b.Spend(1e6);
    EXPECT_TRUE(b.CanStart());
    b.Spend(1e9);
    b.Refill(-5.0);
    EXPECT_TRUE(b.CanStart());
}

TEST(FlashBudget, StartsFullAtShareTimesWindow) {
    FlashBudget b(0.5, 200.0);  // holds at most 100 ms
    EXPECT_TRUE(b.capped());
    EXPECT_DOUBLE_EQ(b.share(), 0.5);
    EXPECT_DOUBLE_EQ(b.credit_ms(), 100.0);
    EXPECT_TRUE(b.CanStart());
    FlashBudget d(0.25);  // the default window is 2000 ms
    EXPECT_DOUBLE_EQ(d.credit_ms(), 500.0);
    FlashBudget e(0.1, 50.0);
    EXPECT_DOUBLE_EQ(e.credit_ms(), 5.0);
}

TEST(FlashBudget, SpendingToZeroOrBelowStopsStarts) {
    FlashBudget b(0.5, 200.0);  // holds at most 100 ms
    b.Spend(60.0);
    EXPECT_DOUBLE_EQ(b.credit_ms(), 40.0);
    EXPECT_TRUE(b.CanStart());
    b.Spend(40.0);
    EXPECT_DOUBLE_EQ(b.credit_ms(), 0.0);
    EXPECT_FALSE(b.CanStart());  // positive credit needed
    b.Spend(10.0);
    EXPECT_DOUBLE_EQ(b.credit_ms(), -10.0);
    EXPECT_FALSE(b.CanStart());
}

TEST(FlashBudget, RefillAddsShareOfElapsedCappedAtShareTimesWindow) {
    FlashBudget b(0.5, 200.0);  // holds at most 100 ms
    b.Spend(100.0);
    b.Refill(10.0);
    EXPECT_DOUBLE_EQ(b.credit_ms(), 5.0);
    EXPECT_TRUE(b.CanStart());
    b.Refill(100.0);
    EXPECT_DOUBLE_EQ(b.credit_ms(), 55.0);
    b.Refill(1000.0);
    EXPECT_DOUBLE_EQ(b.credit_ms(), 100.0);
    b.Refill(1.0);
    EXPECT_DOUBLE_EQ(b.credit_ms(), 100.0);

    FlashBudget q(0.25, 400.0);
    q.Spend(100.0);
    EXPECT_DOUBLE_EQ(q.credit_ms(), 0.0);
    q.Refill(40.0);
    EXPECT_DOUBLE_EQ(q.credit_ms(), 10.0);
    q.Refill(1e6);
    EXPECT_DOUBLE_EQ(q.credit_ms(), 100.0);
}

TEST(FlashBudget, NegativeElapsedIsIgnored) {
    FlashBudget b(0.5, 200.0);  // holds at most 100 ms
    b.Spend(50.0);
    b.Refill(-40.0);
    EXPECT_DOUBLE_EQ(b.credit_ms(), 50.0);
    b.Spend(60.0);
    b.Refill(-1000.0);
    EXPECT_DOUBLE_EQ(b.credit_ms(), -10.0);
    EXPECT_FALSE(b.CanStart());
}

TEST(FlashBudget, DebtIsRepaidBeforeTheNextStart) {
    FlashBudget b(0.5, 200.0);  // holds at most 100 ms
    b.Spend(150.0);             // a started evaluation is charged in full
    EXPECT_DOUBLE_EQ(b.credit_ms(), -50.0);
    EXPECT_FALSE(b.CanStart());
    b.Refill(60.0);
    EXPECT_DOUBLE_EQ(b.credit_ms(), -20.0);
    EXPECT_FALSE(b.CanStart());
    b.Refill(40.0);
    EXPECT_DOUBLE_EQ(b.credit_ms(), 0.0);
    EXPECT_FALSE(b.CanStart());
    b.Refill(2.0);
    EXPECT_DOUBLE_EQ(b.credit_ms(), 1.0);
    EXPECT_TRUE(b.CanStart());
}

// ---- FlashBoard --------------------------------------------------------------------------------

constexpr SessionId kSession = 11;
constexpr SessionId kOtherSession = 12;
constexpr TenantId kTenant = 3;
constexpr TenantId kOtherTenant = 4;
constexpr FlashId kFlashA = 101;
constexpr FlashId kFlashB = 102;

FlashResult MakeResult(std::string answer,
                       std::uint64_t version,
                       FlashBoard::Clock::time_point finished_at = FlashBoard::Clock::now()) {
    FlashResult r;
    r.answer = std::move(answer);
    r.tokens = {5, 6, 7};
    r.stop_reason = StopReason::kEndOfGeneration;
    r.version = version;
    r.confidence = 2.5;
    r.eval_ms = 12.0;
    r.finished_at = finished_at;
    return r;
}

class FlashBoardTest : public ::testing::Test {
protected:
    void SetUp() override {
        question_ = Flash("Who is winning?");
        board_.AddSession(kSession, kTenant, 5);
        board_.AddQuestion(kSession, kFlashA, question_);
    }

    FlashLookup Lookup(const QueryOptions& query) const {
        return board_.Lookup(kTenant, kSession, query, now_);
    }

    FlashLookup Lookup() const { return Lookup(FlashQuery(question_)); }

    FlashBoard board_;
    FlashOptions question_;
    FlashBoard::Clock::time_point now_ = FlashBoard::Clock::now();
};

TEST_F(FlashBoardTest, UnknownSessionOrAnotherTenantsSession) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    const QueryOptions q = FlashQuery(question_);
    EXPECT_EQ(board_.Lookup(kTenant, kOtherSession, q, now_).outcome, Outcome::kUnknownSession);
    EXPECT_EQ(board_.Lookup(kOtherTenant, kSession, q, now_).outcome, Outcome::kUnknownSession);
    // Checked before anything else.
    QueryOptions no_cache = q;
    no_cache.allow_cached = false;
    EXPECT_EQ(board_.Lookup(kOtherTenant, kSession, no_cache, now_).outcome,
              Outcome::kUnknownSession);
    const FlashLookup other = board_.Lookup(kOtherTenant, kSession, q, now_);
    EXPECT_FALSE(other.answer.cached);
    EXPECT_TRUE(other.answer.text.empty());
}

TEST_F(FlashBoardTest, NoMatchingQuestionIsNotRegistered) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    QueryOptions q = FlashQuery(question_);
    q.question = "Who is losing?";
    EXPECT_EQ(Lookup(q).outcome, Outcome::kNotRegistered);
    q = FlashQuery(question_);
    q.max_tokens = question_.max_tokens + 1;
    EXPECT_EQ(Lookup(q).outcome, Outcome::kNotRegistered);
    q = FlashQuery(question_);
    q.stop = {"."};
    EXPECT_EQ(Lookup(q).outcome, Outcome::kNotRegistered);
    // A session without questions.
    board_.AddSession(kOtherSession, kTenant, 0);
    EXPECT_EQ(board_.Lookup(kTenant, kOtherSession, FlashQuery(question_), now_).outcome,
              Outcome::kNotRegistered);
}

TEST_F(FlashBoardTest, CachedAnswersNotAllowedIsNotRegistered) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    QueryOptions q = FlashQuery(question_);
    q.allow_cached = false;
    const FlashLookup l = Lookup(q);
    EXPECT_EQ(l.outcome, Outcome::kNotRegistered);
    EXPECT_FALSE(l.answer.cached);
}

TEST_F(FlashBoardTest, RegisteredWithoutResultIsStale) {
    EXPECT_EQ(Lookup().outcome, Outcome::kStale);
    QueryOptions q = FlashQuery(question_);
    q.max_staleness = 100;
    q.max_staleness_ms = 1e9;
    EXPECT_EQ(Lookup(q).outcome, Outcome::kStale);
}

TEST_F(FlashBoardTest, ResultAtAcceptedVersionIsAHit) {
    board_.Publish(kSession, kFlashA, MakeResult("the red team", 5, now_ - 100ms));
    const FlashLookup l = Lookup();
    ASSERT_EQ(l.outcome, Outcome::kHit);
    EXPECT_EQ(l.answer.text, "the red team");
    EXPECT_EQ(l.answer.tokens, (Tokens{5, 6, 7}));
    EXPECT_EQ(l.answer.stop_reason, StopReason::kEndOfGeneration);
    EXPECT_EQ(l.answer.version, 5U);
    EXPECT_DOUBLE_EQ(l.answer.confidence, 2.5);
    EXPECT_TRUE(l.answer.cached);
    EXPECT_EQ(l.answer.flash_id, kFlashA);
    EXPECT_NEAR(l.answer.cached_age_ms, 100.0, 1e-6);
    EXPECT_TRUE(l.answer.step_logits.empty());
}

TEST_F(FlashBoardTest, QueryWithUntrimmedQuestionHits) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    QueryOptions q = FlashQuery(question_);
    q.question = "  Who is winning?\n";
    EXPECT_EQ(Lookup(q).outcome, Outcome::kHit);
}

TEST_F(FlashBoardTest, PicksTheMatchingQuestion) {
    FlashOptions other = Flash("Who scored?");
    other.max_tokens = 8;
    board_.AddQuestion(kSession, kFlashB, other);
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    board_.Publish(kSession, kFlashB, MakeResult("Ann", 5, now_));
    const FlashLookup a = Lookup();
    const FlashLookup b = Lookup(FlashQuery(other));
    ASSERT_EQ(a.outcome, Outcome::kHit);
    ASSERT_EQ(b.outcome, Outcome::kHit);
    EXPECT_EQ(a.answer.flash_id, kFlashA);
    EXPECT_EQ(a.answer.text, "red");
    EXPECT_EQ(b.answer.flash_id, kFlashB);
    EXPECT_EQ(b.answer.text, "Ann");
}

TEST_F(FlashBoardTest, NewerAcceptedVersionMakesTheResultStale) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    ASSERT_EQ(Lookup().outcome, Outcome::kHit);
    board_.SetAccepted(kSession, 6);
    const FlashLookup l = Lookup();
    EXPECT_EQ(l.outcome, Outcome::kStale);
    EXPECT_FALSE(l.answer.cached);
    EXPECT_TRUE(l.answer.text.empty());
    // A result newer than what the board knows as accepted answers too.
    board_.Publish(kSession, kFlashA, MakeResult("blue", 7, now_));
    EXPECT_EQ(Lookup().outcome, Outcome::kHit);
}

TEST_F(FlashBoardTest, MaxStalenessInVersions) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    QueryOptions q = FlashQuery(question_);
    q.max_staleness = 1;
    board_.SetAccepted(kSession, 6);
    FlashLookup l = Lookup(q);
    ASSERT_EQ(l.outcome, Outcome::kHit);
    EXPECT_EQ(l.answer.version, 5U);
    board_.SetAccepted(kSession, 7);
    EXPECT_EQ(Lookup(q).outcome, Outcome::kStale);
    q.max_staleness = 2;
    EXPECT_EQ(Lookup(q).outcome, Outcome::kHit);
}

TEST_F(FlashBoardTest, MaxStalenessInMilliseconds) {
    const auto finished = now_ - 1h;
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, finished));
    board_.SetAccepted(kSession, 8);  // three versions behind
    QueryOptions q = FlashQuery(question_);
    const auto at = finished + 100ms;

    q.max_staleness_ms = 200;
    FlashLookup l = board_.Lookup(kTenant, kSession, q, at);
    ASSERT_EQ(l.outcome, Outcome::kHit);
    EXPECT_NEAR(l.answer.cached_age_ms, 100.0, 1e-6);
    EXPECT_EQ(l.answer.version, 5U);

    q.max_staleness_ms = 100;
    EXPECT_EQ(board_.Lookup(kTenant, kSession, q, at).outcome, Outcome::kHit);

    q.max_staleness_ms = 50;
    EXPECT_EQ(board_.Lookup(kTenant, kSession, q, at).outcome, Outcome::kStale);

    // The age is taken from `now`, not from the clock.
    q.max_staleness_ms = 200;
    EXPECT_EQ(board_.Lookup(kTenant, kSession, q, finished + 300ms).outcome, Outcome::kStale);
}

TEST_F(FlashBoardTest, ZeroMaxStalenessMsGivesNoAgeAllowance) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    board_.SetAccepted(kSession, 6);
    QueryOptions q = FlashQuery(question_);
    q.max_staleness_ms = 0;
    EXPECT_EQ(board_.Lookup(kTenant, kSession, q, now_).outcome, Outcome::kStale);
}

TEST_F(FlashBoardTest, AppendInFlightMakesEvenACurrentResultStale) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    ASSERT_EQ(Lookup().outcome, Outcome::kHit);
    board_.BeginAppend(kSession);
    EXPECT_EQ(Lookup().outcome, Outcome::kStale);
    QueryOptions lax = FlashQuery(question_);
    lax.max_staleness = 100;
    lax.max_staleness_ms = 1e9;
    EXPECT_EQ(Lookup(lax).outcome, Outcome::kStale);
    board_.EndAppend(kSession);
    EXPECT_EQ(Lookup().outcome, Outcome::kHit);
}

TEST_F(FlashBoardTest, TwoBeginsNeedTwoEnds) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    board_.BeginAppend(kSession);
    board_.BeginAppend(kSession);
    EXPECT_EQ(Lookup().outcome, Outcome::kStale);
    board_.EndAppend(kSession);
    EXPECT_EQ(Lookup().outcome, Outcome::kStale);
    board_.EndAppend(kSession);
    EXPECT_EQ(Lookup().outcome, Outcome::kHit);
}

TEST_F(FlashBoardTest, AppendInFlightOnAnotherSessionDoesNotMatter) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    board_.AddSession(kOtherSession, kTenant, 0);
    board_.BeginAppend(kOtherSession);
    EXPECT_EQ(Lookup().outcome, Outcome::kHit);
    board_.EndAppend(kOtherSession);
}

TEST_F(FlashBoardTest, RemoveQuestionThenNotRegistered) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    board_.RemoveQuestion(kSession, kFlashA);
    EXPECT_EQ(Lookup().outcome, Outcome::kNotRegistered);
    auto list = board_.List(kTenant, kSession);
    ASSERT_TRUE(list.ok());
    EXPECT_TRUE(list->empty());
    EXPECT_TRUE(board_.Owns(kTenant, kSession));
}

TEST_F(FlashBoardTest, RemoveSessionThenUnknown) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    board_.RemoveSession(kSession);
    EXPECT_EQ(Lookup().outcome, Outcome::kUnknownSession);
    EXPECT_FALSE(board_.Owns(kTenant, kSession));
    EXPECT_EQ(board_.List(kTenant, kSession).status().code(), StatusCode::kNotFound);
}

TEST_F(FlashBoardTest, PublishReplacesThePreviousResult) {
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));
    FlashResult newer = MakeResult("blue", 6, now_);
    newer.tokens = {9};
    newer.confidence = 0.75;
    board_.SetAccepted(kSession, 6);
    board_.Publish(kSession, kFlashA, newer);
    const FlashLookup l = Lookup();
    ASSERT_EQ(l.outcome, Outcome::kHit);
    EXPECT_EQ(l.answer.text, "blue");
    EXPECT_EQ(l.answer.tokens, (Tokens{9}));
    EXPECT_EQ(l.answer.version, 6U);
    EXPECT_DOUBLE_EQ(l.answer.confidence, 0.75);

    auto list = board_.List(kTenant, kSession);
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 1U);
    ASSERT_TRUE((*list)[0].result.has_value());
    EXPECT_EQ((*list)[0].result->answer, "blue");
}

TEST_F(FlashBoardTest, ListShowsQuestionsResultsAndCurrent) {
    FlashOptions other = Flash("Who scored?");
    other.max_tokens = 8;
    board_.AddQuestion(kSession, kFlashB, other);
    board_.Publish(kSession, kFlashA, MakeResult("red", 5, now_));

    auto list = board_.List(kTenant, kSession);
    ASSERT_TRUE(list.ok()) << list.status().ToString();
    ASSERT_EQ(list->size(), 2U);
    const FlashInfo& a = (*list)[0];
    const FlashInfo& b = (*list)[1];
    EXPECT_EQ(a.id, kFlashA);
    EXPECT_EQ(a.options.question, "Who is winning?");
    EXPECT_EQ(a.options.max_tokens, kDefaultFlashMaxTokens);
    ASSERT_TRUE(a.result.has_value());
    EXPECT_EQ(a.result->answer, "red");
    EXPECT_EQ(a.result->version, 5U);
    EXPECT_EQ(a.accepted_version, 5U);
    EXPECT_TRUE(a.current());
    EXPECT_EQ(b.id, kFlashB);
    EXPECT_EQ(b.options.question, "Who scored?");
    EXPECT_EQ(b.options.max_tokens, 8);
    EXPECT_FALSE(b.result.has_value());
    EXPECT_FALSE(b.current());

    board_.SetAccepted(kSession, 6);
    list = board_.List(kTenant, kSession);
    ASSERT_TRUE(list.ok());
    EXPECT_EQ((*list)[0].accepted_version, 6U);
    EXPECT_FALSE((*list)[0].current());
}

TEST_F(FlashBoardTest, ListOfAnotherTenantsOrUnknownSessionIsNotFound) {
    EXPECT_EQ(board_.List(kOtherTenant, kSession).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(board_.List(kTenant, kOtherSession).status().code(), StatusCode::kNotFound);
}

TEST_F(FlashBoardTest, Owns) {
    EXPECT_TRUE(board_.Owns(kTenant, kSession));
    EXPECT_FALSE(board_.Owns(kOtherTenant, kSession));
    EXPECT_FALSE(board_.Owns(kTenant, kOtherSession));
    board_.AddSession(kOtherSession, kOtherTenant, 0);
    EXPECT_TRUE(board_.Owns(kOtherTenant, kOtherSession));
    EXPECT_FALSE(board_.Owns(kTenant, kOtherSession));
}

TEST(FlashInfo, CurrentWhenTheResultAnswersTheAcceptedVersionOrLater) {
    FlashInfo info;
    info.accepted_version = 4;
    EXPECT_FALSE(info.current());
    info.result = MakeResult("x", 3);
    EXPECT_FALSE(info.current());
    info.result->version = 4;
    EXPECT_TRUE(info.current());
    info.result->version = 5;
    EXPECT_TRUE(info.current());
}

}  // namespace
}  // namespace kvs
