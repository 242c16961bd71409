// The engine's free functions over its value types (engine_types.h, engine.h).

#include "runtime/engine.h"

#include <cmath>
#include <exception>
#include <sstream>

namespace kvs {

Result<std::pair<StepTarget, double>> ParseStepTarget(const std::string& text) {
    if (text == "auto" || text == "off") {
        return std::pair(text == "auto" ? StepTarget::kAuto : StepTarget::kOff, 0.0);
    }
    std::size_t end = 0;
    double ms = 0;
    try {
        ms = std::stod(text, &end);
    } catch (const std::exception&) {
        end = 0;
    }
    if (end == 0 || end != text.size() || !(ms > 0.0) || !std::isfinite(ms)) {
        return InvalidArgument(
            "a step target is 'auto', 'off' or a number of milliseconds > 0; got '" + text + "'");
    }
    return std::pair(StepTarget::kFixed, ms);
}

std::string StepTargetText(StepTarget target, double target_step_ms) {
    switch (target) {
        case StepTarget::kAuto:
            return "auto";
        case StepTarget::kOff:
            return "off";
        case StepTarget::kFixed:
            break;
    }
    std::ostringstream s;
    s << target_step_ms;
    return s.str();
}

Status SessionClosed(SessionId id) {
    return NotFound("session " + std::to_string(id) + " was closed");
}

Result<Tokens> TokenizeAppend(const Model& model,
                              std::string_view text,
                              std::size_t max_text_bytes) {
    if (text.size() > max_text_bytes) {
        return TooLarge("append of " + std::to_string(text.size()) +
                        " bytes exceeds the limit of " + std::to_string(max_text_bytes));
    }
    if (text.empty()) {
        return InvalidArgument("the appended text is empty");
    }
    auto tokens = model.Tokenize(text, false);
    if (tokens.ok() && tokens->empty()) {
        return InvalidArgument("the appended text has no tokens");
    }
    return tokens;
}

}  // namespace kvs
