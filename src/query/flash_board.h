#pragma once
// The flash board: what any thread may read about sessions and their flash questions without
// waiting for the engine thread. It holds each session's owner and accepted version, its
// registered questions and their latest results, so a query for a registered question is
// answered from the caller's thread in microseconds even while the engine runs a long step.
//
// Thread-safety: the engine thread writes (sessions, accepted versions, questions, results);
// every method may be called from any thread (one mutex, held only for map lookups and copies).
//
// A cached result answers a query (Lookup) only when all of these hold:
//   - the caller's tenant owns the session;
//   - no append submitted before the query is still on its way to the engine (BeginAppend /
//     EndAppend bracket that time), so a cached answer never overtakes the caller's own data;
//   - the query asks exactly what the question evaluates (QueryMatchesFlash) and allows cached
//     answers;
//   - the result answers the accepted version, or is at most max_staleness versions behind it,
//     or was computed at most max_staleness_ms ago.

#include "common/status.h"
#include "query/flash.h"
#include "query/query.h"
#include "session/session.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace kvs {

// One registered question as the board shows it.
struct FlashInfo {
    FlashId id = 0;
    FlashOptions options;
    std::optional<FlashResult> result;   // the latest evaluation, if any
    std::uint64_t accepted_version = 0;  // the session's, when this was read

    bool current() const { return result && result->version >= accepted_version; }
};

struct FlashLookup {
    enum class Outcome : std::uint8_t {
        kNotRegistered,  // no registered question matches (or cached answers not allowed)
        kStale,          // one matches, but its result is missing or too old
        kHit,            // `answer` holds the cached result
        kUnknownSession  // not this tenant's session, or none
    };
    Outcome outcome = Outcome::kNotRegistered;
    Answer answer;
};

class FlashBoard {
public:
    using Clock = std::chrono::steady_clock;

    // ---- Engine thread -------------------------------------------------------------------
    void AddSession(SessionId session, TenantId tenant, std::uint64_t accepted_version);
    void RemoveSession(SessionId session);
    void SetAccepted(SessionId session, std::uint64_t accepted_version);
    void AddQuestion(SessionId session, FlashId id, const FlashOptions& options);
    void RemoveQuestion(SessionId session, FlashId id);
    void Publish(SessionId session, FlashId id, const FlashResult& result);

    // ---- Any thread ----------------------------------------------------------------------
    // An append for `session` was submitted (before it is queued for the engine) / the engine
    // accepted or refused it.
    void BeginAppend(SessionId session);
    void EndAppend(SessionId session);

    bool Owns(TenantId tenant, SessionId session) const;

    FlashLookup Lookup(TenantId tenant,
                       SessionId session,
                       const QueryOptions& query,
                       Clock::time_point now = Clock::now()) const;

    // kNotFound when the tenant does not own the session.
    Result<std::vector<FlashInfo>> List(TenantId tenant, SessionId session) const;

private:
    struct Question {
        FlashId id = 0;
        FlashOptions options;
        std::optional<FlashResult> result;
    };

    struct Entry {
        TenantId tenant = 0;
        std::uint64_t accepted_version = 0;
        std::vector<Question> questions;
    };

    mutable std::mutex mu_;
    std::map<SessionId, Entry> sessions_;
    std::map<SessionId, int> appends_in_flight_;
};

}  // namespace kvs
