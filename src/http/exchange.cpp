#include "http/exchange.h"

#include "common/check.h"
#include "common/thread_role.h"
#include "http/json_body.h"

namespace kvs::http {

unsigned HttpStatusFor(StatusCode code) {
    switch (code) {
        case StatusCode::kOk:
            return 200;
        case StatusCode::kInvalidArgument:
            return 400;
        case StatusCode::kNotFound:
            return 404;
        case StatusCode::kContextFull:
            return 409;
        case StatusCode::kTooLarge:
            return 413;
        case StatusCode::kResourceExhausted:
            return 429;
        case StatusCode::kAborted:
        case StatusCode::kUnavailable:
            return 503;
        case StatusCode::kInternal:
            return 500;
        case StatusCode::kStorage:
            return 507;  // Insufficient Storage
    }
    return 500;
}

std::string DumpJson(const Json& value) {
    KV_CHECK(CurrentThreadRole() == ThreadRole::kOther,
             std::string("HTTP rendering on the ") + ThreadRoleName(CurrentThreadRole()) +
                 " thread: post it to the connection (Exchange::Post)");
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

namespace {

// OpenAI clients read error.type; ours says which family the code belongs to.
const char* ErrorType(unsigned http_status) {
    if (http_status == 401 || http_status == 403) {
        return "authentication_error";
    }
    if (http_status == 429) {
        return "rate_limit_error";
    }
    if (http_status >= 500) {
        return "server_error";
    }
    return "invalid_request_error";
}

}  // namespace

HttpResponse ErrorResponse(unsigned http_status,
                           const std::string& code,
                           const std::string& message) {
    Json body;
    body["error"]["code"] = code;
    body["error"]["message"] = message;
    body["error"]["type"] = ErrorType(http_status);
    HttpResponse r = JsonResponse(http_status, DumpJson(body));
    if (http_status == 429 || http_status == 503) {
        r.headers.emplace_back("Retry-After", "1");
    }
    return r;
}

std::string ErrorJson(const Status& status) {
    std::string body = ErrorResponse(status).body;
    while (!body.empty() && body.back() == '\n') {
        body.pop_back();
    }
    return body;
}

HttpResponse ErrorResponse(const Status& status) {
    return ErrorResponse(HttpStatusFor(status.code()), StatusCodeName(status.code()),
                         status.message());
}

HttpResponse JsonResponse(unsigned http_status, std::string json) {
    HttpResponse r;
    r.status = http_status;
    r.body = std::move(json);
    r.body += '\n';
    return r;
}

std::string SseEvent(const std::string& name, const std::string& json) {
    std::string out;
    if (!name.empty()) {
        out += "event: " + name + "\n";
    }
    out += "data: " + json + "\n\n";
    return out;
}

}  // namespace kvs::http
