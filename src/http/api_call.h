#pragma once
// What the route files share: one request being served, and its JSON helpers.

#include "http/api.h"

#include <chrono>
#include <memory>
#include <type_traits>

namespace kvs::http {

struct Api::Call {
    HttpRequest request;
    ExchangePtr ex;  // metered: answer through it exactly once
    Tenant tenant;
    Runtime* rt = nullptr;
    Api* api = nullptr;

    // The body as a JSON object within the API's limits; on error the 400/413 is already sent.
    std::optional<Json> Body() const {
        auto body = ParseJsonBody(request.body, {.max_body_bytes = api->limits_.max_body_bytes,
                                                 .max_depth = api->limits_.max_json_depth});
        if (!body.ok()) {
            ex->Reply(ErrorResponse(body.status()));
            return std::nullopt;
        }
        return std::move(body).value();
    }

    // Sends the error and returns true when `st` is not ok.
    bool Failed(const Status& st) const {
        if (st.ok()) {
            return false;
        }
        ex->Reply(ErrorResponse(st));
        return true;
    }
};

// A reply for the runtime that carries its result over to the connection's I/O thread
// (Exchange::Post) before `render` turns it into a response: replies run on the engine thread
// or the store's writer, which only hand results over (common/thread_role.h).
template <typename F>
auto OnIo(ExchangePtr ex, F render) {
    return [ex = std::move(ex), render = std::make_shared<F>(std::move(render))](auto value) {
        auto v = std::make_shared<std::decay_t<decltype(value)>>(std::move(value));
        ex->Post([render, v] { (*render)(std::move(*v)); });
    };
}

// Reads an optional field into `out` (left as is when absent); false after replying the error.
template <typename T>
bool Read(const Api::Call& c, Result<std::optional<T>> field, T& out) {
    if (c.Failed(field.status())) {
        return false;
    }
    if (*field) {
        out = std::move(**field);
    }
    return true;
}

// The sampling fields shared by queries, flash questions and completions: temperature, top_p,
// top_k, seed. False after replying the error.
bool ReadSampling(const Api::Call& c, const Json& body, SamplingParams& s);

// {"answer": ..., "version": ..., "cached": ..., "timings": {...}} for a session query.
// An answer as the query endpoints return it; `received`: when the request reached the route
// (timings.server_ms, its time inside the server up to now).
Json AnswerJson(
    const Answer& a,
    std::chrono::steady_clock::time_point received = std::chrono::steady_clock::time_point{});

}  // namespace kvs::http
