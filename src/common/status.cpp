#include "common/status.h"

namespace kvs {

const char* StatusCodeName(StatusCode code) {
    switch (code) {
        case StatusCode::kOk:
            return "ok";
        case StatusCode::kInvalidArgument:
            return "invalid_argument";
        case StatusCode::kNotFound:
            return "not_found";
        case StatusCode::kContextFull:
            return "context_full";
        case StatusCode::kTooLarge:
            return "too_large";
        case StatusCode::kResourceExhausted:
            return "resource_exhausted";
        case StatusCode::kAborted:
            return "aborted";
        case StatusCode::kUnavailable:
            return "unavailable";
        case StatusCode::kInternal:
            return "internal";
        case StatusCode::kStorage:
            return "storage_failed";
    }
    return "unknown";
}

std::string Status::ToString() const {
    if (ok()) {
        return "ok";
    }
    return std::string(StatusCodeName(code_)) + ": " + message_;
}

}  // namespace kvs
