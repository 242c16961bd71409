// Durable sessions, engine side: held appends (queued, not ingested until the data log has them),
// sessions adopted from snapshot files at start, and captures of sessions' state for snapshots.
// The runtime (runtime/durable.cpp) owns the store and the snapshot files.

#include "runtime/engine.h"

#include <algorithm>

namespace kvs {

namespace {

// The held append of `version`, or end().
std::deque<PendingAppend>::iterator FindHeld(Session& s, std::uint64_t version) {
    return std::find_if(s.pending.begin(), s.pending.end(),
                        [&](const PendingAppend& a) { return a.version == version && a.held; });
}

Status NoHeldAppend(SessionId id, std::uint64_t version) {
    return NotFound("no held append " + std::to_string(version) + " on session " +
                    std::to_string(id));
}

}  // namespace

Status Engine::ConfirmAppend(SessionId id, std::uint64_t version) {
    Session* s = FindSession(id);
    auto it = s == nullptr ? std::deque<PendingAppend>::iterator{} : FindHeld(*s, version);
    if (s == nullptr || it == s->pending.end()) {
        return NoHeldAppend(id, version);
    }
    it->held = false;
    return Status::Ok();
}

Status Engine::RevokeAppend(SessionId id, std::uint64_t version) {
    Session* s = FindSession(id);
    auto it = s == nullptr ? std::deque<PendingAppend>::iterator{} : FindHeld(*s, version);
    if (s == nullptr || it == s->pending.end()) {
        return NoHeldAppend(id, version);
    }
    s->n_pending_tokens -= static_cast<int>(it->tokens.size());
    s->pending.erase(it);
    if (version == s->accepted_version) {  // the last one: the accepted version steps back
        s->accepted_version = s->pending.empty() ? s->version : s->pending.back().version;
        board_.SetAccepted(id, s->accepted_version);
    }
    for (auto& [q, job] : queries_) {  // nobody waits for data that will never come
        if (job.session == id) {
            job.target_version = std::min(job.target_version, s->accepted_version);
        }
    }
    return Status::Ok();
}

Result<SessionId> Engine::AdoptSession(const SessionOptions& options, SavedSession saved) {
    if (options.id == 0 || sessions_.contains(options.id)) {
        return InvalidArgument("adopting a session needs a new id");
    }
    if (n_sessions() >= options_.max_sessions) {
        return Status(StatusCode::kResourceExhausted, "the engine holds its maximum of " +
                                                          std::to_string(options_.max_sessions) +
                                                          " sessions");
    }
    auto prefix = model_->Tokenize(options.prefix, model_->AddsBos());
    if (!prefix.ok()) {
        return prefix.status();
    }
    if (saved.tokens.size() < prefix->size() ||
        !std::equal(prefix->begin(), prefix->end(), saved.tokens.begin())) {
        return InvalidArgument("the snapshot's tokens do not start with the session's prefix");
    }
    Session s;
    s.id = options.id;
    s.tenant = options.tenant;
    s.on_full = options.on_full;
    s.n_ctx = options.max_context > 0 ? std::min(context_->n_ctx_seq(), options.max_context)
                                      : context_->n_ctx_seq();
    if (static_cast<int>(saved.tokens.size()) > s.n_ctx) {
        return ContextFull("the snapshot holds " + std::to_string(saved.tokens.size()) +
                           " tokens; the session holds at most " + std::to_string(s.n_ctx));
    }
    s.tokens = std::move(saved.tokens);
    s.n_prefix_tokens = static_cast<int>(prefix->size());
    s.version = s.accepted_version = s.snapshot_version = saved.version;
    s.last_used = ++tick_;
    next_session_ = std::max(next_session_, s.id + 1);
    board_.AddSession(s.id, s.tenant, s.version);
    saved_.emplace(s.id, std::move(saved));
    const SessionId id = s.id;
    sessions_.emplace(id, std::move(s));
    return id;
}

Status Engine::LoadSavedState(Session& s) {
    auto node = saved_.extract(s.id);
    auto snap = ReadSnapshotFile(node.mapped().file, identity_, /*with_state=*/true);
    if (!snap.ok()) {
        return Status(snap.status().code(),
                      node.mapped().file.string() + ": " + snap.status().message());
    }
    if (snap->header.session != s.id || snap->header.log_version != node.mapped().version ||
        snap->tokens != s.tokens) {
        return InvalidArgument(node.mapped().file.string() + " changed since it was read at start");
    }
    return context_->RestoreSequence(s.seq, snap->state);
}

std::optional<SessionCapture> Engine::Capture(SessionId id, std::size_t max_bytes) {
    const Session* s = FindSession(id);
    if (s == nullptr || !s->resident() || s->busy() || !s->at_boundary()) {
        return std::nullopt;
    }
    if (context_->SequenceBytes(s->seq) + sizeof(Token) * s->tokens.size() > max_bytes) {
        return std::nullopt;  // no room in the snapshot budget now
    }
    return SessionCapture{id, s->version, s->tokens, context_->SaveSequence(s->seq)};
}

void Engine::ConfirmSnapshot(SessionId id, std::uint64_t version) {
    if (Session* s = FindSession(id); s != nullptr) {
        s->snapshot_version = std::max(s->snapshot_version, version);
    }
}

void Engine::ReserveIds(SessionId highest_session, FlashId highest_flash) {
    next_session_ = std::max(next_session_, highest_session + 1);
    next_flash_ = std::max(next_flash_, highest_flash + 1);
}

std::vector<SessionCapture> Engine::TakeParkCaptures() {
    return std::exchange(park_captures_, {});
}

}  // namespace kvs
