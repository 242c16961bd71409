// Prompt-lookup drafting (query/draft.h): what is guessed from where.

#include "query/draft.h"

#include <gtest/gtest.h>

namespace kvs {
namespace {

DraftOptions Options(int max_draft, int ngram_max = 3, int ngram_min = 2) {
    DraftOptions o;
    o.max_draft = max_draft;
    o.ngram_max = ngram_max;
    o.ngram_min = ngram_min;
    return o;
}

TEST(LookupDraftTest, CopiesWhatFollowedTheLatestOccurrence) {
    // "1 2 3 9 9 | 1 2 3 7 8 | 1 2 3": the latest earlier "1 2 3" is followed by 7 8 1 2.
    const Tokens h = {1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 1, 2, 3};
    EXPECT_EQ(LookupDraft(h, Options(4)), (Tokens{7, 8, 1, 2}));
    EXPECT_EQ(LookupDraft(h, Options(1)), (Tokens{7}));
}

TEST(LookupDraftTest, StopsAtTheEndOfTheHistory) {
    const Tokens h = {5, 6, 7, 5, 6};  // "5 6" occurred once before, followed by 7 5 6
    EXPECT_EQ(LookupDraft(h, Options(8)), (Tokens{7, 5, 6}));
}

TEST(LookupDraftTest, FallsBackToShorterSuffixes) {
    const Tokens h = {4, 2, 3, 8, 1, 2, 3};  // "1 2 3" is new; "2 3" occurred, followed by 8
    EXPECT_EQ(LookupDraft(h, Options(2)), (Tokens{8, 1}));
    const Tokens single = {7, 9, 1, 5, 3, 7};              // only the last token repeats
    EXPECT_TRUE(LookupDraft(single, Options(2)).empty());  // ngram_min 2
    EXPECT_EQ(LookupDraft(single, Options(2, 3, 1)), (Tokens{9, 1}));  // ngram_min 1
}

TEST(LookupDraftTest, NothingToDraft) {
    EXPECT_TRUE(LookupDraft(Tokens{}, Options(4)).empty());
    EXPECT_TRUE(LookupDraft(Tokens{1, 2}, Options(4)).empty());
    EXPECT_TRUE(LookupDraft(Tokens{1, 2, 3, 4, 5}, Options(4)).empty());  // no repeats
    EXPECT_TRUE(LookupDraft(Tokens{1, 2, 1, 2}, Options(0)).empty());     // off
    // A longest n-gram above the history's length is skipped, shorter ones still tried.
    EXPECT_EQ(LookupDraft(Tokens{1, 2, 1, 2}, Options(3, 8, 1)), (Tokens{1, 2}));
}

}  // namespace
}  // namespace kvs
