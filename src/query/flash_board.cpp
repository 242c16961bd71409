#include "query/flash_board.h"

#include <algorithm>

namespace kvs {

void FlashBoard::AddSession(SessionId session, TenantId tenant, std::uint64_t accepted_version) {
    std::lock_guard lock(mu_);
    sessions_[session] = Entry{tenant, accepted_version, {}};
}

void FlashBoard::RemoveSession(SessionId session) {
    std::lock_guard lock(mu_);
    sessions_.erase(session);
}

void FlashBoard::SetAccepted(SessionId session, std::uint64_t accepted_version) {
    std::lock_guard lock(mu_);
    if (auto it = sessions_.find(session); it != sessions_.end()) {
        it->second.accepted_version = accepted_version;
    }
}

void FlashBoard::AddQuestion(SessionId session, FlashId id, const FlashOptions& options) {
    std::lock_guard lock(mu_);
    if (auto it = sessions_.find(session); it != sessions_.end()) {
        it->second.questions.push_back({id, options, std::nullopt});
    }
}

void FlashBoard::RemoveQuestion(SessionId session, FlashId id) {
    std::lock_guard lock(mu_);
    if (auto it = sessions_.find(session); it != sessions_.end()) {
        std::erase_if(it->second.questions, [id](const Question& q) { return q.id == id; });
    }
}

void FlashBoard::Publish(SessionId session, FlashId id, const FlashResult& result) {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end()) {
        return;
    }
    for (Question& q : it->second.questions) {
        if (q.id == id) {
            q.result = result;
        }
    }
}

void FlashBoard::BeginAppend(SessionId session) {
    std::lock_guard lock(mu_);
    ++appends_in_flight_[session];
}

void FlashBoard::EndAppend(SessionId session) {
    std::lock_guard lock(mu_);
    auto it = appends_in_flight_.find(session);
    if (it != appends_in_flight_.end() && --it->second <= 0) {
        appends_in_flight_.erase(it);
    }
}

bool FlashBoard::Owns(TenantId tenant, SessionId session) const {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session);
    return it != sessions_.end() && it->second.tenant == tenant;
}

FlashLookup FlashBoard::Lookup(TenantId tenant,
                               SessionId session,
                               const QueryOptions& query,
                               Clock::time_point now) const {
    FlashLookup out;
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end() || it->second.tenant != tenant) {
        out.outcome = FlashLookup::Outcome::kUnknownSession;
        return out;
    }
    if (!query.allow_cached) {
        return out;
    }
    const Entry& e = it->second;
    auto q = std::find_if(e.questions.begin(), e.questions.end(),
                          [&](const Question& x) { return QueryMatchesFlash(query, x.options); });
    if (q == e.questions.end()) {
        return out;
    }
    out.outcome = FlashLookup::Outcome::kStale;
    if (!q->result || appends_in_flight_.contains(session)) {
        return out;
    }
    const FlashResult& r = *q->result;
    const double age_ms = std::chrono::duration<double, std::milli>(now - r.finished_at).count();
    const std::uint64_t behind =
        e.accepted_version > r.version ? e.accepted_version - r.version : 0;
    const bool fresh = behind <= query.max_staleness ||
                       (query.max_staleness_ms > 0 && age_ms <= query.max_staleness_ms);
    if (!fresh) {
        return out;
    }
    out.outcome = FlashLookup::Outcome::kHit;
    Answer& a = out.answer;
    a.text = r.answer;
    a.tokens = r.tokens;
    a.stop_reason = r.stop_reason;
    a.version = r.version;
    a.confidence = r.confidence;
    a.cached = true;
    a.flash_id = q->id;
    a.cached_age_ms = age_ms;
    a.timings.n_answer_tokens = static_cast<int>(r.tokens.size());
    return out;
}

Result<std::vector<FlashInfo>> FlashBoard::List(TenantId tenant, SessionId session) const {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end() || it->second.tenant != tenant) {
        return NotFound("unknown session " + std::to_string(session));
    }
    std::vector<FlashInfo> out;
    for (const Question& q : it->second.questions) {
        out.push_back({q.id, q.options, q.result, it->second.accepted_version});
    }
    return out;
}

}  // namespace kvs
