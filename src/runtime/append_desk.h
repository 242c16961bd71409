#pragma once
// AppendDesk: admission of appends on the caller's thread, so that acknowledging an append never
// waits for the engine thread (whose step may take a second or more). It keeps, per session, what
// admission needs: the owner, the room accounting of on_full = reject sessions (tokens in the
// session plus tokens accepted and not yet ingested), the last version given out, and how far
// ingest is behind. The engine still checks everything again when the append reaches it.
//
// Versions are given out in order and never reused; an append whose recording failed leaves a
// gap. `then` of Admit runs under the desk's lock, so work queued there is queued in version
// order.
//
// Thread-safety: every method may be called from any thread (one mutex). `then` must not call
// back into the desk.

#include "common/status.h"
#include "session/session.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>

namespace kvs {

struct DeskSession {
    TenantId tenant = 0;
    OnFull on_full = OnFull::kReject;
    int n_ctx = 0;                       // tokens the session may hold
    int n_prefix_tokens = 0;             // the pinned prefix (roll windows exclude it)
    int n_tokens = 0;                    // in the session and accepted (reject accounting)
    std::uint64_t accepted_version = 0;  // the last version given out
    int max_behind_tokens = 0;           // most tokens accepted and not yet ingested; 0: no limit
};

class AppendDesk {
public:
    // A session opens for appends (creation, restore). `behind_tokens`: already queued for ingest.
    void Add(SessionId id, const DeskSession& session, int behind_tokens = 0);
    void Remove(SessionId id);

    // Admits an append of `n_tokens`: kNotFound (unknown session, or another tenant's: the
    // same message), kContextFull (reject: no room with what is queued; roll: longer than the
    // window), kResourceExhausted (ingest is more than max_behind_tokens behind; retry). On
    // success `then(version, n_tokens_after)` runs under the lock; when it returns false (the
    // work could not be queued) the admission is undone and Admit returns kResourceExhausted.
    Result<std::uint64_t> Admit(TenantId tenant,
                                SessionId id,
                                int n_tokens,
                                const std::function<bool(std::uint64_t, int)>& then);

    // An admitted append was not recorded: its tokens leave the accounting (its version stays
    // used).
    void Revoke(SessionId id, std::uint64_t version);

    // The engine ingested the session's data through `version`.
    void Ingested(SessionId id, std::uint64_t version);

    // Waits until no admission is in progress (shutdown: work queued by `then` is complete).
    void Fence() const { std::lock_guard lock(mu_); }

    // Tokens accepted and not yet ingested (tests, metrics); 0 for an unknown session.
    int BehindTokens(SessionId id) const;

private:
    struct Behind {  // an admitted append not yet ingested
        std::uint64_t version = 0;
        int n_tokens = 0;   // its tokens (the ingest backlog)
        int n_counted = 0;  // what it added to DeskSession::n_tokens (a full rolling
                            // window adds nothing)
    };

    struct Entry {
        DeskSession session;
        std::deque<Behind> behind;  // in version order
        int n_behind = 0;
    };

    mutable std::mutex mu_;
    std::map<SessionId, Entry> sessions_;  // guarded by mu_
};

}  // namespace kvs
