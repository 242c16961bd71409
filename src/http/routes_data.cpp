// The data routes of a session: append (text or records) and read its data log in pages.

#include "http/api_call.h"

#include <charconv>

namespace kvs::http {
namespace {

constexpr std::uint64_t kMaxEntriesPerPage = 10000;
constexpr std::uint64_t kMaxPageBytes = std::uint64_t{1} << 20;  // of text

// {"entries": [...], "more": ..., "next_after": ...}: the texts are moved, not copied, and the
// body is serialized once.
std::string LogPageJson(LogPage page, std::uint64_t after) {
    Json j;
    j["entries"] = Json::array();
    for (LogEntry& e : page.entries) {
        j["entries"].push_back(Json{{"version", e.version}, {"text", std::move(e.text)}});
    }
    j["more"] = page.more;
    j["next_after"] = page.entries.empty() ? after : page.entries.back().version;
    return DumpJson(j);
}

}  // namespace

void Api::ReadData(Call& c, SessionId id) {
    std::uint64_t after = 0;
    std::uint64_t limit = 1000;
    std::uint64_t max_bytes = kMaxPageBytes;
    for (const auto& [name, value] : c.request.query) {
        std::uint64_t* field = name == "after"       ? &after
                               : name == "limit"     ? &limit
                               : name == "max_bytes" ? &max_bytes
                                                     : nullptr;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(),
                                               field != nullptr ? *field : after);
        if (field == nullptr || ec != std::errc() || end != value.data() + value.size()) {
            return c.ex->Reply(ErrorResponse(
                InvalidArgument("query parameters: after (a version), limit (1..10000) and "
                                "max_bytes (1..1048576), as integers; got '" +
                                name + "'")));
        }
    }
    if (limit < 1 || limit > kMaxEntriesPerPage) {
        return c.ex->Reply(ErrorResponse(InvalidArgument("limit must be 1..10000")));
    }
    if (max_bytes < 1 || max_bytes > kMaxPageBytes) {
        return c.ex->Reply(ErrorResponse(InvalidArgument("max_bytes must be 1..1048576")));
    }
    // Read on the store's reader thread; the reply comes back through the exchange.
    c.rt->ReadLog(c.tenant.id, id, after, {.max_entries = limit, .max_bytes = max_bytes},
                  [ex = c.ex, after](Result<LogPage> page) {
                      if (!page.ok()) {
                          return ex->Reply(ErrorResponse(page.status()));
                      }
                      ex->Reply(JsonResponse(200, LogPageJson(std::move(page).value(), after)));
                  });
}

void Api::AppendData(Call& c, SessionId id) {
    auto body = c.Body();
    if (!body || c.Failed(RejectUnknownFields(*body, {"text", "records", "wait"}))) {
        return;
    }
    std::string text;
    bool wait = false;
    if (!Read(c, OptString(*body, "text", limits_.max_text_bytes), text) ||
        !Read(c, OptBool(*body, "wait"), wait)) {
        return;
    }
    const Json* records = FindField(*body, "records");
    if ((records != nullptr) == !text.empty()) {
        return c.ex->Reply(ErrorResponse(
            InvalidArgument("send exactly one of 'text' (a non-empty string) or 'records'")));
    }
    if (records != nullptr) {
        if (!c.rt->Owns(c.tenant.id, id)) {  // the template is the session's
            return c.ex->Reply(ErrorResponse(NotFound("unknown session " + std::to_string(id))));
        }
        auto rendered = RenderRecords(
            *records, TemplateOf(id),
            {.max_records = limits_.max_records, .max_line_bytes = limits_.max_query_bytes});
        if (c.Failed(rendered.status())) {
            return;
        }
        text = std::move(rendered).value();
    }
    c.rt->Append(c.tenant.id, id, std::move(text), wait,
                 OnIo(c.ex, [ex = c.ex](Result<AppendResult> r) {
                     if (!r.ok()) {
                         return ex->Reply(ErrorResponse(r.status()));
                     }
                     // 202 unless the data is in the KV cache: a waited-for append that a
                     // shutdown overtook is stored, and ingested after the restart.
                     Json j;
                     j["accepted_tokens"] = r->n_tokens_appended;
                     j["version"] = r->version;
                     j["tokens"] = r->n_tokens;
                     j["ingested"] = r->ingested;
                     ex->Reply(JsonResponse(r->ingested ? 200 : 202, DumpJson(j)));
                 }));
}

}  // namespace kvs::http
