#include "runtime/engine.h"

#include "engine/backend.h"

#include <algorithm>
#include <new>

namespace kvs {
namespace {

constexpr int kCellAlign = 256;

std::string RoomMessage(const Session& s, int n_needed, const char* what) {
    return "session " + std::to_string(s.id) + " has room for " + std::to_string(s.room()) +
           " more tokens (" + std::to_string(s.n_tokens()) + " of " + std::to_string(s.n_ctx) +
           " used); the " + what + " needs " + std::to_string(n_needed);
}

// Resident slots and cells per slot from the options (docs/architecture.md, "KV budget").
Result<ContextOptions> PlanContext(const EngineOptions& o) {
    if (o.n_scratch < 1 || o.n_scratch > 64) {
        return InvalidArgument("n_scratch must be 1..64");
    }
    if (o.n_template_slots < 0 || o.n_template_slots > 16) {
        return InvalidArgument("n_template_slots must be 0..16");
    }
    if (o.flash_max_running < 0 || o.flash_max_running > 64) {
        return InvalidArgument("flash_max_running must be 0..64");
    }
    const int n_extra = o.n_scratch + o.flash_max_running + o.n_template_slots;
    int n_slots = o.n_sessions;
    if (o.kv_budget_cells > 0) {
        const std::int64_t slot =
            std::int64_t{(o.n_ctx_session + kCellAlign - 1) / kCellAlign} * kCellAlign;
        n_slots = static_cast<int>(o.kv_budget_cells / slot) - n_extra;
        if (n_slots < 1) {
            return InvalidArgument("kv_budget_cells holds no session slot next to the " +
                                   std::to_string(n_extra) +
                                   " scratch, flash copy and template sequences");
        }
    }
    if (n_slots < 1 || n_slots + n_extra > 256) {
        return InvalidArgument(
            "session slots + scratch + flash copy + template sequences must be at most 256");
    }
    if (o.prefill_chunk_tokens < 0 || o.prefill_chunk_tokens > o.n_batch) {
        return InvalidArgument("prefill_chunk_tokens must be 0..n_batch");
    }
    if (o.max_sessions < 1) {
        return InvalidArgument("max_sessions must be >= 1");
    }
    if (o.max_flash_per_session < 0) {
        return InvalidArgument("max_flash_per_session must be >= 0");
    }
    if (o.step_target == StepTarget::kFixed && !(o.target_step_ms > 0.0)) {
        return InvalidArgument("a fixed step target needs target_step_ms > 0");
    }
    if (!(o.flash_max_share > 0.0 && o.flash_max_share <= 1.0)) {
        return InvalidArgument("flash_max_share must be in (0, 1]");
    }
    if (o.n_batch < n_slots + n_extra) {  // libllama reserves one output row per sequence
        return InvalidArgument("n_batch (" + std::to_string(o.n_batch) +
                               ") must be at least the number of sequences (" +
                               std::to_string(n_slots + n_extra) + ")");
    }
    ContextOptions c;
    c.n_seq_max = n_slots + n_extra;
    c.n_ctx_seq = o.n_ctx_session;
    c.n_batch = o.n_batch;
    c.n_ubatch = o.n_batch;
    c.n_threads = o.n_threads;
    c.flash_attn = o.flash_attn;
    c.type_k = o.kv_type_k;
    c.type_v = o.kv_type_v;
    return c;
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
    auto copts = PlanContext(options);
    if (!copts.ok()) {
        return copts.status();
    }
    KV_RETURN_IF_ERROR(InitBackend());
    auto model = Model::Load({.path = options.model_path,
                              .n_gpu_layers = options.n_gpu_layers,
                              .repack_weights = options.repack_weights});
    if (!model.ok()) {
        return model.status();
    }
    auto context = Context::Create(**model, *copts);
    if (!context.ok()) {
        return context.status();
    }
    (*context)->faults() = options.test_faults;
    auto park = ParkStore::Create({options.park_host_bytes, options.park_dir});
    if (!park.ok()) {
        return park.status();
    }
    return std::unique_ptr<Engine>(new Engine(options, std::move(model).value(),
                                              std::move(context).value(), std::move(park).value()));
}

Engine::Engine(EngineOptions options,
               std::unique_ptr<Model> model,
               std::unique_ptr<Context> context,
               std::unique_ptr<ParkStore> park)
    : options_(std::move(options)),
      model_(std::move(model)),
      context_(std::move(context)),
      park_(std::move(park)),
      slots_(0,
             context_->n_seq_max() - options_.n_scratch - options_.flash_max_running -
                 options_.n_template_slots),
      scratch_(slots_.n_slots(), options_.n_scratch),
      copies_(slots_.n_slots() + options_.n_scratch, options_.flash_max_running),
      batch_(context_->n_batch()),
      flash_budget_(options_.flash_max_share),
      templates_(*context_,
                 SlotPool(slots_.n_slots() + options_.n_scratch + options_.flash_max_running,
                          options_.n_template_slots),
                 options_.min_template_tokens,
                 metrics_) {
    if (options_.prefill_chunk_tokens == 0) {
        options_.prefill_chunk_tokens = context_->n_batch();
    }
    identity_ = {model_->Fingerprint(), context_->KvFingerprint()};
}

Session* Engine::FindSession(SessionId id) {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : &it->second;
}

const Session* Engine::FindSession(SessionId id) const {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : &it->second;
}

Status Engine::ValidateText(std::string_view text, const char* what) const {
    if (text.size() > options_.max_text_bytes) {
        return TooLarge(std::string(what) + " of " + std::to_string(text.size()) +
                        " bytes exceeds the limit of " + std::to_string(options_.max_text_bytes));
    }
    return Status::Ok();
}

Result<SessionId> Engine::TryCreateSession(const SessionOptions& options) {
    KV_RETURN_IF_ERROR(ValidateText(options.prefix, "prefix"));
    auto prefix = model_->Tokenize(options.prefix, model_->AddsBos());
    if (!prefix.ok()) {
        return prefix.status();
    }
    if (static_cast<int>(prefix->size()) > context_->n_ctx_seq()) {
        return ContextFull("the prefix has " + std::to_string(prefix->size()) +
                           " tokens; a session holds at most " +
                           std::to_string(context_->n_ctx_seq()));
    }
    if (options.on_full == OnFull::kRoll && !context_->CanShift()) {
        return InvalidArgument(
            "on_full=roll needs a model whose KV memory can shift positions; this one cannot");
    }
    if (n_sessions() >= options_.max_sessions) {
        return Status(StatusCode::kResourceExhausted, "the engine holds its maximum of " +
                                                          std::to_string(options_.max_sessions) +
                                                          " sessions; close one first");
    }
    if (options.id > 0 && sessions_.contains(options.id)) {
        return InvalidArgument("session " + std::to_string(options.id) + " exists already");
    }
    Session s;
    s.id = options.id > 0 ? options.id : next_session_;
    s.tenant = options.tenant;
    s.on_full = options.on_full;
    s.n_ctx = context_->n_ctx_seq();
    if (options.max_context < 0) {
        return InvalidArgument("max_context must be >= 0");
    }
    if (options.max_context > 0) {
        if (options.max_context <= static_cast<int>(prefix->size())) {
            return ContextFull("max_context " + std::to_string(options.max_context) +
                               " leaves no room after the prefix's " +
                               std::to_string(prefix->size()) + " tokens");
        }
        s.n_ctx = std::min(s.n_ctx, options.max_context);
    }
    s.last_used = ++tick_;
    KV_RETURN_IF_ERROR(MakeResident(s));
    if (!prefix->empty()) {
        auto from = templates_.Fill(s.seq, *prefix);
        if (!from.ok()) {
            slots_.Release(s.seq);  // Fill left the sequence empty
            return from.status();
        }
        s.template_id = *from;
        s.tokens = std::move(prefix).value();
        s.n_prefix_tokens = s.n_tokens();
    }
    const SessionId id = s.id;
    next_session_ = std::max(next_session_, id + 1);
    sessions_.emplace(id, std::move(s));
    board_.AddSession(id, options.tenant, 0);
    for (const FlashOptions& f : options.flash) {  // all or nothing
        if (auto added = AddFlash(id, f); !added.ok()) {
            KV_CHECK(CloseSession(id).ok(), "closing a session just made");
            return added.status();
        }
    }
    return id;
}

Status Engine::CloseSession(SessionId id) {
    Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    std::vector<QueryId> doomed;  // its queued and running queries
    for (const auto& [q, job] : queries_) {
        if (job.session == id) {
            doomed.push_back(q);
        }
    }
    for (QueryId q : doomed) {
        std::erase(waiting_, q);
        QueryJob& job = queries_.at(q);
        if (job.flash != 0) {
            CancelFlash(job);
        } else {
            FailQuery(job, SessionClosed(id));
        }
    }
    flash_.erase(id);
    board_.RemoveSession(id);
    if (s->resident()) {
        context_->ClearSequence(s->seq);
        slots_.Release(s->seq);
    }
    templates_.Release(Tokens(s->tokens.begin(), s->tokens.begin() + s->n_prefix_tokens),
                       s->template_id);
    park_->Erase(id);
    saved_.erase(id);
    sessions_.erase(id);
    return Status::Ok();
}

Result<SessionInfo> Engine::Info(SessionId id) const {
    const Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    SessionInfo i;
    i.id = s->id;
    i.tenant = s->tenant;
    i.n_tokens = s->n_tokens();
    i.n_prefix_tokens = s->n_prefix_tokens;
    i.version = s->version;
    i.accepted_version = s->accepted_version;
    i.n_pending_tokens = s->n_pending_tokens;
    i.n_ctx = s->n_ctx;
    i.room = s->room();
    i.n_cached = s->resident() ? context_->SeqPosMax(s->seq) + 1 : 0;
    i.resident = s->resident();
    i.n_dropped_tokens = s->n_dropped_tokens;
    i.snapshot_version = s->snapshot_version;
    i.on_full = s->on_full;
    if (auto f = flash_.find(id); f != flash_.end()) {
        i.n_flash = static_cast<int>(f->second.size());
        i.n_flash_stale =
            static_cast<int>(std::count_if(f->second.begin(), f->second.end(),
                                           [&](const FlashQuestion& q) { return IsStale(*s, q); }));
    }
    return i;
}

Result<Tokens> Engine::SessionTokens(SessionId id) const {
    const Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    return s->tokens;
}

std::vector<SessionId> Engine::SessionIds() const {
    std::vector<SessionId> ids;
    for (const auto& [id, s] : sessions_) {
        ids.push_back(id);
    }
    return ids;
}

Result<AppendResult> Engine::TrySubmitAppend(SessionId id,
                                             std::string_view text,
                                             const AppendOptions& how) {
    Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    auto tokens = TokenizeAppend(*model_, text, options_.max_text_bytes);
    if (!tokens.ok()) {
        return tokens.status();
    }
    return QueueAppend(*s, std::move(tokens).value(), how);
}

Result<AppendResult> Engine::TrySubmitAppendTokens(SessionId id,
                                                   Tokens tokens,
                                                   const AppendOptions& how) {
    Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    if (tokens.empty()) {
        return InvalidArgument("no tokens to append");
    }
    for (Token t : tokens) {
        if (t < 0 || t >= model_->n_vocab()) {
            return InvalidArgument("token " + std::to_string(t) + " is outside the vocabulary");
        }
    }
    return QueueAppend(*s, std::move(tokens), how);
}

Result<AppendResult> Engine::QueueAppend(Session& s, Tokens tokens, const AppendOptions& how) {
    if (how.version > 0 && how.version <= s.accepted_version) {
        return InvalidArgument("version " + std::to_string(how.version) +
                               " does not follow the accepted version " +
                               std::to_string(s.accepted_version));
    }
    const int n_new = static_cast<int>(tokens.size());
    if (s.on_full == OnFull::kReject && n_new > s.room() - s.n_pending_tokens) {
        Session shadow = s;  // the message counts queued tokens as used
        shadow.tokens.resize(static_cast<std::size_t>(s.n_tokens()) +
                             static_cast<std::size_t>(s.n_pending_tokens));
        return ContextFull(RoomMessage(shadow, n_new, "append"));
    }
    if (s.on_full == OnFull::kRoll && n_new > s.n_ctx - s.n_prefix_tokens) {
        return ContextFull("the append has " + std::to_string(n_new) +
                           " tokens; the rolling window after the prefix holds " +
                           std::to_string(s.n_ctx - s.n_prefix_tokens));
    }
    s.accepted_version = how.version > 0 ? how.version : s.accepted_version + 1;
    s.n_pending_tokens += n_new;
    const Clock::time_point accepted =
        how.accepted == Clock::time_point{} ? Clock::now() : how.accepted;
    s.pending.push_back({std::move(tokens), s.accepted_version, 0, how.held, accepted});
    OnAccepted(s);
    return AppendResult{n_new, s.n_tokens() + s.n_pending_tokens, s.accepted_version};
}

Result<QueryId> Engine::TrySubmitQuery(SessionId id, const QueryOptions& options) {
    Session* s = FindSession(id);
    if (s == nullptr) {
        return NotFound("unknown session " + std::to_string(id));
    }
    KV_RETURN_IF_ERROR(ValidateQuery(options));
    // A registered question with a current (or acceptably stale) result answers at once.
    FlashLookup hit = board_.Lookup(s->tenant, id, options);
    if (hit.outcome == FlashLookup::Outcome::kHit) {
        step_metrics_.flash_hits.Add();
        if (options.on_text) {
            options.on_text(hit.answer.text);
        }
        const QueryId qid = next_query_++;
        finished_.push_back({qid, std::move(hit.answer)});
        return qid;
    }
    if (hit.outcome == FlashLookup::Outcome::kStale) {
        step_metrics_.flash_misses.Add();
    }
    auto question = model_->Tokenize(options.question, false);
    if (!question.ok()) {
        return question.status();
    }
    const int n_needed = static_cast<int>(question->size()) + options.max_tokens;
    const int n_now = s->n_tokens() + s->n_pending_tokens;
    if (n_needed > s->n_ctx - (s->on_full == OnFull::kRoll ? s->n_prefix_tokens : n_now)) {
        Session shadow = *s;
        shadow.tokens.resize(static_cast<std::size_t>(std::min(n_now, s->n_ctx)));
        return ContextFull(RoomMessage(shadow, n_needed, "query (question + max_tokens)"));
    }
    QueryJob job;
    job.id = next_query_++;
    job.session = id;
    // Read your writes, unless the caller accepts an answer up to max_staleness versions old.
    job.target_version = std::max(
        s->version, s->accepted_version - std::min(s->accepted_version, options.max_staleness));
    job.options = options;
    job.prompt = std::move(question).value();
    return QueueQuery(std::move(job));
}

QueryId Engine::QueueQuery(QueryJob job) {
    job.arrival = ++tick_;
    job.submitted = Clock::now();
    const QueryId qid = job.id;
    waiting_.push_back(qid);
    queries_.emplace(qid, std::move(job));
    return qid;
}

Result<QueryId> Engine::TrySubmitStateless(Tokens context, const QueryOptions& options) {
    if (options.question.empty()) {  // a completion: the context alone is the prompt
        if (context.empty()) {
            return InvalidArgument("the prompt is empty");
        }
        QueryOptions check = options;
        check.question = " ";
        KV_RETURN_IF_ERROR(ValidateQuery(check));
    } else {
        KV_RETURN_IF_ERROR(ValidateQuery(options));
    }
    auto question = model_->Tokenize(options.question, false);
    if (!question.ok()) {
        return question.status();
    }
    const int n_needed = static_cast<int>(context.size() + question->size()) + options.max_tokens;
    if (n_needed > context_->n_ctx_seq()) {
        return ContextFull("the stateless prompt needs " + std::to_string(n_needed) +
                           " tokens (context + question + max_tokens); a sequence holds " +
                           std::to_string(context_->n_ctx_seq()));
    }
    QueryJob job;
    job.id = next_query_++;
    job.options = options;
    job.prompt = std::move(context);
    job.prompt.insert(job.prompt.end(), question->begin(), question->end());
    return QueueQuery(std::move(job));
}

Result<SessionId> Engine::CreateSession(const SessionOptions& options) {
    auto result = TryCreateSession(options);
    CountRefusal(result.status());
    return result;
}

Result<AppendResult> Engine::SubmitAppend(SessionId id,
                                          std::string_view text,
                                          const AppendOptions& how) {
    MaybeThrowAtSubmit();
    auto result = TrySubmitAppend(id, text, how);
    CountRefusal(result.status());
    return result;
}

void Engine::MaybeThrowAtSubmit() {
    FaultPlan& f = context_->faults();
    if (f.throw_at_submit > 0 && ++n_submits_for_faults_ == f.throw_at_submit) {
        throw std::bad_alloc();
    }
}

Result<AppendResult> Engine::SubmitAppendTokens(SessionId id,
                                                Tokens tokens,
                                                const AppendOptions& how) {
    MaybeThrowAtSubmit();
    auto result = TrySubmitAppendTokens(id, std::move(tokens), how);
    CountRefusal(result.status());
    return result;
}

Result<QueryId> Engine::SubmitQuery(SessionId id, const QueryOptions& options) {
    MaybeThrowAtSubmit();
    auto result = TrySubmitQuery(id, options);
    CountRefusal(result.status());
    return result;
}

Result<QueryId> Engine::SubmitStateless(Tokens context, const QueryOptions& options) {
    auto result = TrySubmitStateless(std::move(context), options);
    CountRefusal(result.status());
    return result;
}

bool Engine::HasWork() const {
    if (!queries_.empty() || FlashCanStart()) {
        return true;
    }
    return std::any_of(sessions_.begin(), sessions_.end(),
                       [](const auto& kv) { return kv.second.n_ready_tokens() > 0; });
}

std::vector<FinishedQuery> Engine::TakeFinished() {
    return std::exchange(finished_, {});
}

std::vector<EngineEvent> Engine::TakeEvents() {
    return std::exchange(events_, {});
}

Result<Tokens> Engine::TokenizeContext(std::string_view text, bool parse_special) const {
    KV_RETURN_IF_ERROR(ValidateText(text, "context"));
    return model_->Tokenize(text, model_->AddsBos(), parse_special);
}

}  // namespace kvs
