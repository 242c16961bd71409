// Residency: which sessions hold a KV slot. A session beyond the slots is parked (its sequence
// state saved to the ParkStore: host memory, then disk) and restored into any free slot when it
// has work, least recently used sessions going first. Also the rolling window of on_full = roll.

#include "runtime/engine.h"

#include <algorithm>

namespace kvs {
namespace {

constexpr int kMaxRestoresForIngestPerStep = 1;  // bounds the park/restore work in one step
constexpr std::uint64_t kMinResidentSteps = 2;   // a restored session ingests before it may go

double MsSince(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Status Engine::MakeResident(Session& s) {
    if (s.resident()) {
        return Status::Ok();
    }
    // A tenant at its resident limit makes room among its own sessions.
    const bool at_tenant_limit = options_.max_resident_per_tenant > 0 &&
                                 ResidentCount(s.tenant) >= options_.max_resident_per_tenant;
    auto seq = at_tenant_limit ? std::nullopt : slots_.Acquire();
    if (!seq) {
        Session* victim = PickVictim(&s, /*idle_only=*/false, at_tenant_limit);
        if (victim == nullptr) {
            return Status(StatusCode::kResourceExhausted,
                          "all " + std::to_string(slots_.n_slots()) +
                              " session slots are busy; retry shortly");
        }
        if (Status parked = ParkSession(*victim); !parked.ok()) {
            return Status(StatusCode::kUnavailable,
                          "no room to park a session and free a slot: " + parked.message());
        }
        seq = slots_.Acquire();
    }
    s.seq = *seq;
    s.resident_since = tick_;
    const auto started = Clock::now();
    if (Status loaded = LoadState(s); !loaded.ok()) {
        // Whatever state was saved is gone or unusable: the cache is rebuilt from the tokens,
        // which the session always keeps. A session never runs on a cache without them.
        context_->ClearSequence(s.seq);
        if (s.n_tokens() > 0) {
            std::fprintf(stderr, "kvstream: session %llu: %s; re-prefilling %d tokens\n",
                         static_cast<unsigned long long>(s.id), loaded.ToString().c_str(),
                         s.n_tokens());
            metrics_
                .GetCounter("kvs_restore_fallbacks_total",
                            "Saved states found unusable or missing when loaded (the tokens "
                            "were re-prefilled)")
                .Add();
        }
        if (Status rebuilt = Reprefill(s); !rebuilt.ok()) {
            context_->ClearSequence(s.seq);
            slots_.Release(s.seq);
            s.seq = -1;
            return Status(StatusCode::kUnavailable, "session " + std::to_string(s.id) +
                                                        " could not be rebuilt in the KV cache (" +
                                                        rebuilt.message() +
                                                        "); its data is kept, retry shortly");
        }
    }
    KV_CHECK(context_->SeqPosMax(s.seq) + 1 == s.n_tokens(),
             "a resident session's cache holds exactly its tokens");
    if (s.n_tokens() == 0) {
        return Status::Ok();  // a new session: nothing was restored
    }
    const double ms = MsSince(started);
    events_.push_back({EngineEvent::Kind::kRestored, s.id, s.version, ms});
    metrics_.GetCounter("kvs_restores_total", "Sessions restored into a KV slot").Add();
    metrics_.GetHistogram("kvs_restore_ms", "Time to restore a parked session", kMsBuckets)
        .Observe(ms);
    return Status::Ok();
}

Status Engine::LoadState(Session& s) {
    Status loaded;
    if (saved_.contains(s.id)) {  // adopted from a snapshot at start
        loaded = LoadSavedState(s);
    } else if (park_->Contains(s.id)) {
        auto blob = park_->Take(s.id);
        loaded = blob.ok() ? context_->RestoreSequence(s.seq, *blob) : blob.status();
    } else if (s.n_tokens() > 0) {
        loaded = Status(StatusCode::kNotFound, "its saved state is gone");
    }
    if (loaded.ok() && context_->SeqPosMax(s.seq) + 1 != s.n_tokens()) {
        loaded =
            Internal("the restored state holds " + std::to_string(context_->SeqPosMax(s.seq) + 1) +
                     " tokens, not " + std::to_string(s.n_tokens()));
    }
    return loaded;
}

Status Engine::Reprefill(Session& s) {
    return PrefillSequence(*context_, s.seq, 0, s.tokens);
}

Status Engine::ParkSession(Session& s) {
    CancelSessionFlash(s.id);  // their copies must not outlive the slot's contents
    KV_CHECK(s.resident() && !s.busy(), "parking a session that is not idle and resident");
    const auto started = Clock::now();
    std::vector<std::uint8_t> blob = context_->SaveSequence(s.seq);
    // A copy for a snapshot, within the room the snapshot budget leaves (else a later chance).
    const std::size_t n_capture_bytes = blob.size() + sizeof(Token) * s.tokens.size();
    if (options_.capture_on_park && s.version > s.snapshot_version && s.at_boundary() &&
        n_capture_bytes <= park_capture_room_bytes_) {
        park_captures_.push_back({s.id, s.version, s.tokens, blob});
        park_capture_room_bytes_ -= n_capture_bytes;
    }
    KV_RETURN_IF_ERROR(park_->Put(s.id, std::move(blob)));
    context_->ClearSequence(s.seq);
    slots_.Release(s.seq);
    s.seq = -1;
    const double ms = MsSince(started);
    events_.push_back({EngineEvent::Kind::kParked, s.id, s.version, ms});
    metrics_.GetCounter("kvs_parks_total", "Sessions parked out of a KV slot").Add();
    metrics_.GetHistogram("kvs_park_ms", "Time to park a session", kMsBuckets).Observe(ms);
    return Status::Ok();
}

int Engine::ResidentCount(TenantId tenant) const {
    int n = 0;
    for (const auto& [id, s] : sessions_) {
        n += s.resident() && s.tenant == tenant ? 1 : 0;
    }
    return n;
}

Session* Engine::PickVictim(const Session* keep, bool idle_only, bool same_tenant) {
    // Idle sessions first (no queued work), least recently used first; a session with queued
    // appends may go only after it had a few steps to ingest.
    Session* best = nullptr;
    auto rank = [](const Session& s) { return std::pair(!s.pending.empty(), s.last_used); };
    for (auto& [id, s] : sessions_) {
        // A flash evaluation does not protect its session (parking cancels it) unless live asks
        // joined it.
        const bool held = s.busy() || FlashAwaited(s);
        if (&s == keep || !s.resident() || held || QueryWaitsFor(id) ||
            (same_tenant && s.tenant != keep->tenant)) {
            continue;
        }
        const bool has_work = !s.pending.empty();
        if (has_work && (idle_only || tick_ < s.resident_since + kMinResidentSteps)) {
            continue;
        }
        if (best == nullptr || rank(s) < rank(*best)) {
            best = &s;
        }
    }
    return best;
}

void Engine::RestoreWaiting() {
    // Sessions whose queries wait come first, in query arrival order. When no slot can be freed
    // at all (parking itself fails), the query fails instead of waiting forever.
    std::vector<QueryId> doomed;
    Status why;
    const std::deque<QueryId> waiting = waiting_;  // parking may requeue joined asks
    for (QueryId q : waiting) {
        const SessionId id = queries_.at(q).session;
        if (id == 0 || sessions_.at(id).resident()) {
            continue;
        }
        if (Status st = MakeResident(sessions_.at(id)); st.code() == StatusCode::kUnavailable) {
            doomed.push_back(q);
            why = st;
        }
    }
    for (QueryId q : doomed) {
        std::erase(waiting_, q);
        FailQuery(queries_.at(q), why);
    }
    // Then parked sessions with queued appends, least recently served first.
    std::vector<Session*> parked;
    for (auto& [id, s] : sessions_) {
        if (!s.resident() && s.n_ready_tokens() > 0) {
            parked.push_back(&s);
        }
    }
    std::sort(parked.begin(), parked.end(),
              [](const Session* a, const Session* b) { return a->last_used < b->last_used; });
    int n_restored = 0;
    for (Session* s : parked) {
        if (n_restored == kMaxRestoresForIngestPerStep) {
            break;
        }
        if (!slots_.CanAcquire() && PickVictim(s, /*idle_only=*/false, false) == nullptr) {
            break;
        }
        n_restored += MakeResident(*s).ok() ? 1 : 0;
    }
}

Status Engine::RollWindow(Session& s, int n_needed) {
    const int n_data = s.n_tokens() - s.n_prefix_tokens;
    const int quarter = (s.n_ctx - s.n_prefix_tokens) / 4;  // drop in steps to roll rarely
    const int n_drop = std::min(n_data, std::max(n_needed - s.room(), quarter));
    if (n_drop <= 0 || n_needed > s.room() + n_drop) {
        return ContextFull("session " + std::to_string(s.id) + " cannot make room for " +
                           std::to_string(n_needed) + " tokens even by rolling its window");
    }
    // 1. Every cell after the prefix goes: the kept data's K/V were computed while the dropped
    // data was visible, so shifting them would not be what a fresh prefill of the window holds.
    const auto started = Clock::now();
    const Pos p0 = s.n_prefix_tokens;
    if (!context_->RemoveTokens(s.seq, p0, -1)) {
        return Status(StatusCode::kUnavailable,
                      "this model's KV memory cannot drop a range of positions, so on_full=roll "
                      "is not possible");
    }
    s.tokens.erase(s.tokens.begin() + p0, s.tokens.begin() + p0 + n_drop);
    s.n_dropped_tokens += static_cast<std::uint64_t>(n_drop);
    // 2. The kept data is prefilled again after the prefix: the cache then holds exactly a fresh
    // prefill of the window (stateful = stateless, query/agreement.h). A failed prefill leaves
    // the slot; the session is rebuilt from its tokens when it next needs one.
    const std::span<const Token> kept(s.tokens.begin() + p0, s.tokens.end());
    if (Status st = PrefillSequence(*context_, s.seq, p0, kept); !st.ok()) {
        context_->ClearSequence(s.seq);
        slots_.Release(s.seq);
        s.seq = -1;
        return Status(StatusCode::kUnavailable, "session " + std::to_string(s.id) +
                                                    " could not prefill its rolled window (" +
                                                    st.message() + "); retry shortly");
    }
    metrics_
        .GetCounter("kvs_roll_prefill_tokens_total",
                    "Tokens prefilled again after a rolling window dropped its oldest data")
        .Add(static_cast<std::uint64_t>(kept.size()));
    events_.push_back({EngineEvent::Kind::kRolled, s.id, s.version, MsSince(started)});
    return Status::Ok();
}

Status Engine::Park(SessionId id) {
    Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    if (!s->resident()) {
        return Status::Ok();
    }
    if (s->busy() || FlashAwaited(*s)) {
        return Status(StatusCode::kResourceExhausted, "the session is answering a query");
    }
    return ParkSession(*s);
}

Status Engine::Restore(SessionId id) {
    Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    return MakeResident(*s);
}

}  // namespace kvs
