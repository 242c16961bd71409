#include "runtime/append_desk.h"

#include <algorithm>
#include <string>

namespace kvs {

void AppendDesk::Add(SessionId id, const DeskSession& session, int behind_tokens) {
    std::lock_guard lock(mu_);
    Entry& e = sessions_[id];
    e.session = session;
    e.behind.clear();
    e.n_behind = behind_tokens;
    if (behind_tokens > 0) {
        e.behind.push_back({session.accepted_version, behind_tokens, behind_tokens});
    }
}

void AppendDesk::Remove(SessionId id) {
    std::lock_guard lock(mu_);
    sessions_.erase(id);
}

Result<std::uint64_t> AppendDesk::Admit(TenantId tenant,
                                        SessionId id,
                                        int n_tokens,
                                        const std::function<bool(std::uint64_t, int)>& then) {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second.session.tenant != tenant) {
        return NotFound("unknown session " + std::to_string(id));
    }
    Entry& e = it->second;
    DeskSession& s = e.session;
    if (s.on_full == OnFull::kReject && n_tokens > s.n_ctx - s.n_tokens) {
        return ContextFull("session " + std::to_string(id) + " has room for " +
                           std::to_string(s.n_ctx - s.n_tokens) + " more tokens (" +
                           std::to_string(s.n_tokens) + " of " + std::to_string(s.n_ctx) +
                           " used or queued); the append needs " + std::to_string(n_tokens));
    }
    if (s.on_full == OnFull::kRoll && n_tokens > s.n_ctx - s.n_prefix_tokens) {
        return ContextFull("the append has " + std::to_string(n_tokens) +
                           " tokens; the rolling window after the prefix holds " +
                           std::to_string(s.n_ctx - s.n_prefix_tokens));
    }
    if (s.max_behind_tokens > 0 && e.n_behind > 0 && e.n_behind + n_tokens > s.max_behind_tokens) {
        return Status(StatusCode::kResourceExhausted,
                      "session " + std::to_string(id) + " has " + std::to_string(e.n_behind) +
                          " tokens waiting to be ingested (at most " +
                          std::to_string(s.max_behind_tokens) + "); retry shortly");
    }
    const std::uint64_t version = s.accepted_version + 1;
    // A rolling window never holds more than n_ctx: its count stays bounded however long it runs.
    const int n_after = s.on_full == OnFull::kRoll ? std::min(s.n_ctx, s.n_tokens + n_tokens)
                                                   : s.n_tokens + n_tokens;
    if (!then(version, n_after)) {
        return Status(StatusCode::kResourceExhausted,
                      "the engine's command queue is full or stopping; retry shortly");
    }
    s.accepted_version = version;
    e.behind.push_back({version, n_tokens, n_after - s.n_tokens});
    s.n_tokens = n_after;
    e.n_behind += n_tokens;
    return version;
}

void AppendDesk::Revoke(SessionId id, std::uint64_t version) {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
        return;
    }
    Entry& e = it->second;
    for (auto b = e.behind.begin(); b != e.behind.end(); ++b) {
        if (b->version == version) {
            e.session.n_tokens -= b->n_counted;
            e.n_behind -= b->n_tokens;
            e.behind.erase(b);
            return;
        }
    }
}

void AppendDesk::Ingested(SessionId id, std::uint64_t version) {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
        return;
    }
    Entry& e = it->second;
    while (!e.behind.empty() && e.behind.front().version <= version) {
        e.n_behind -= e.behind.front().n_tokens;
        e.behind.pop_front();
    }
}

int AppendDesk::BehindTokens(SessionId id) const {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    return it == sessions_.end() ? 0 : it->second.n_behind;
}

}  // namespace kvs
