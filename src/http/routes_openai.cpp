// OpenAI-compatible stateless endpoints: /v1/completions and /v1/chat/completions, plain and
// streamed (chunks, then "data: [DONE]"), with usage counts. Each request is prefilled from
// scratch on a scratch sequence, in the same engine loop as the sessions.

#include "http/api_call.h"

#include <atomic>
#include <chrono>

namespace kvs::http {
namespace {

std::int64_t UnixNow() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string FinishReason(StopReason r) {
    return r == StopReason::kMaxTokens ? "length" : "stop";
}

// The text of a chat message's content: a string, or an array of {type: "text", text} parts.
Result<std::string> MessageText(const Json& content) {
    if (content.is_string()) {
        return content.get<std::string>();
    }
    if (content.is_array()) {
        std::string text;
        for (const Json& part : content) {
            const bool is_text = part.is_object() && part.contains("type") &&
                                 part["type"].is_string() &&
                                 part["type"].get_ref<const std::string&>() == "text";
            if (!is_text || !part.contains("text") || !part["text"].is_string()) {
                return InvalidArgument("only text content parts are supported");
            }
            text += part["text"].get<std::string>();
        }
        return text;
    }
    return InvalidArgument("a message's content must be a string or an array of text parts");
}

// The prompt of a chat request, rendered with the model's chat template.
Result<std::string> ChatPrompt(const Json& body, const Model& model, std::size_t max_bytes) {
    const Json* messages = FindField(body, "messages");
    if (messages == nullptr || !messages->is_array() || messages->empty()) {
        return InvalidArgument("field 'messages' must be a non-empty array");
    }
    std::vector<std::pair<std::string, std::string>> chat;
    std::size_t n_bytes = 0;
    for (std::size_t i = 0; i < messages->size(); ++i) {
        const Json& m = (*messages)[i];
        const std::string where = "messages[" + std::to_string(i) + "]";
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string() ||
            !m.contains("content")) {
            return InvalidArgument(where + " must be an object with 'role' and 'content'");
        }
        auto text = MessageText(m["content"]);
        if (!text.ok()) {
            return InvalidArgument(where + ": " + text.status().message());
        }
        n_bytes += text->size();
        chat.emplace_back(m["role"].get<std::string>(), std::move(text).value());
    }
    if (n_bytes > max_bytes) {
        return TooLarge("the messages hold " + std::to_string(n_bytes) + " bytes; at most " +
                        std::to_string(max_bytes));
    }
    return model.ApplyChatTemplate(chat);
}

// The request's settings; false after replying the error.
bool ReadCompletion(const Api::Call& c,
                    const Json& body,
                    bool chat,
                    const ApiLimits& limits,
                    QueryOptions& q,
                    bool& stream) {
    // Unknown fields are ignored here: OpenAI clients send many optional ones.
    q.question.clear();
    q.sampling.temperature = 1.0F;  // OpenAI's default
    std::int64_t max_tokens = 16;
    std::int64_t n = 1;
    if (chat) {
        max_tokens = 256;
        if (!Read(c, OptInt(body, "max_completion_tokens", 1, limits.max_tokens), max_tokens)) {
            return false;
        }
    }
    if (!Read(c, OptInt(body, "max_tokens", 1, limits.max_tokens), max_tokens) ||
        !ReadSampling(c, body, q.sampling) ||
        !Read(c, OptStringOrList(body, "stop", 4, 256), q.stop) ||
        !Read(c, OptBool(body, "stream"), stream) || !Read(c, OptInt(body, "n", 1, 1), n) ||
        !Read(c, OptBool(body, "ignore_eos"), q.ignore_eog)) {
        return false;
    }
    q.max_tokens = static_cast<int>(max_tokens);
    return true;
}

// The prompt: the messages through the chat template, or "prompt" (a string or a list of one
// string). False after replying the error.
bool ReadPrompt(
    const Api::Call& c, const Json& body, bool chat, const ApiLimits& limits, std::string& prompt) {
    if (chat) {
        auto rendered = ChatPrompt(body, c.rt->model(), limits.max_text_bytes);
        if (c.Failed(rendered.status())) {
            return false;
        }
        prompt = std::move(rendered).value();
        return true;
    }
    const Json* p = FindField(body, "prompt");
    if (p != nullptr && p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
        prompt = (*p)[0].get<std::string>();
    } else if (!Read(c, OptString(body, "prompt", limits.max_text_bytes), prompt)) {
        return false;
    }
    if (prompt.empty()) {
        c.ex->Reply(ErrorResponse(InvalidArgument("field 'prompt' must be a non-empty string")));
        return false;
    }
    return true;
}

// What every response object of one completion carries.
struct Completion {
    std::string id;
    std::int64_t created = 0;
    std::string model;
    bool chat = false;

    Json Envelope(const std::string& object) const {
        Json j;
        j["id"] = id;
        j["object"] = object;
        j["created"] = created;
        j["model"] = model;
        return j;
    }

    std::string ChunkObject() const { return chat ? "chat.completion.chunk" : "text_completion"; }

    // One streamed chunk: a chat delta or a piece of text.
    std::string Chunk(const Json& delta_or_text, const Json& finish) const {
        Json choice;
        choice["index"] = 0;
        if (chat) {
            choice["delta"] = delta_or_text;
        } else {
            choice["text"] = delta_or_text;
            choice["logprobs"] = nullptr;
        }
        choice["finish_reason"] = finish;
        Json j = Envelope(ChunkObject());
        j["choices"] = Json::array({choice});
        return SseEvent("", DumpJson(j));
    }
};

Json Usage(const Answer& a) {
    const int prompt_tokens = a.timings.n_prompt_tokens;
    const int completion = a.timings.n_answer_tokens;
    return Json{{"prompt_tokens", prompt_tokens},
                {"completion_tokens", completion},
                {"total_tokens", prompt_tokens + completion}};
}

// The whole answer as one response (engine thread; the exchange posts it to the connection).
void ReplyWhole(Exchange& ex, const Completion& meta, const Result<Answer>& a) {
    if (!a.ok()) {
        return ex.Reply(ErrorResponse(a.status()));
    }
    Json choice;
    choice["index"] = 0;
    if (meta.chat) {
        choice["message"] = {{"role", "assistant"}, {"content", a->text}};
    } else {
        choice["text"] = a->text;
        choice["logprobs"] = nullptr;
    }
    choice["finish_reason"] = FinishReason(a->stop_reason);
    Json j = meta.Envelope(meta.chat ? "chat.completion" : "text_completion");
    j["choices"] = Json::array({choice});
    j["usage"] = Usage(*a);
    ex.Reply(JsonResponse(200, DumpJson(j)));
}

// The end of a stream: the finish chunk and the usage, or the error; then [DONE].
void EndStream(Exchange& ex, const Completion& meta, const Result<Answer>& a) {
    if (!a.ok()) {
        ex.Write(SseEvent("", ErrorJson(a.status())));
    } else {
        ex.Write(meta.Chunk(meta.chat ? Json::object() : Json(""), FinishReason(a->stop_reason)));
        Json u = meta.Envelope(meta.ChunkObject());
        u["choices"] = Json::array();
        u["usage"] = Usage(*a);
        ex.Write(SseEvent("", DumpJson(u)));
    }
    ex.Write("data: [DONE]\n\n");
    ex.End();
}

}  // namespace

void Api::Completions(Call& c, bool chat) {
    auto body = c.Body();
    if (!body) {
        return;
    }
    QueryOptions q;
    bool stream = false;
    std::string prompt;
    if (!ReadCompletion(c, *body, chat, limits_, q, stream) ||
        !ReadPrompt(c, *body, chat, limits_, prompt)) {
        return;
    }
    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(UnixNow()) + "-" +
                           std::to_string(reinterpret_cast<std::uintptr_t>(c.ex.get()) % 100000);
    const Completion meta{id, UnixNow(), model_id_, chat};
    if (!stream) {
        c.rt->Stateless(
            c.tenant.id, std::move(prompt), std::move(q), chat,
            OnIo(c.ex, [ex = c.ex, meta](const Result<Answer>& a) { ReplyWhole(*ex, meta, a); }));
        return;
    }
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    c.ex->BeginStream();
    c.ex->OnClose([cancel] { cancel->store(true); });
    if (chat) {
        c.ex->Write(meta.Chunk(Json{{"role", "assistant"}, {"content", ""}}, nullptr));
    }
    q.cancel = cancel;
    q.on_text = [ex = c.ex, meta](std::string_view piece) {  // engine thread: hand it over
        ex->Post([ex, meta, text = std::string(piece)] {
            ex->Write(meta.Chunk(meta.chat ? Json{{"content", text}} : Json(text), nullptr));
        });
    };
    c.rt->Stateless(
        c.tenant.id, std::move(prompt), std::move(q), chat,
        OnIo(c.ex, [ex = c.ex, meta](const Result<Answer>& a) { EndStream(*ex, meta, a); }));
}

}  // namespace kvs::http
