#pragma once
// A small blocking HTTP/1.1 client for the benchmark's load generator (Boost.Beast): one
// keep-alive connection to one server, requests one at a time, bodies read as they arrive so a
// caller can time the first streamed token. Not thread-safe: one client per thread.

#include "common/status.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace kvs::bench {

struct HttpReply {
    int status = 0;
    std::string body;           // the whole body (also when it was streamed to on_data)
    std::string server_timing;  // the Server-Timing header, if any
};

class HttpClient {
public:
    HttpClient(std::string host, int port);
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // Sends `method target` with a JSON body (none when empty) and reads the reply. on_data, when
    // set, sees each piece of the body as it arrives. kUnavailable when the server cannot be
    // reached, the connection breaks or `timeout` passes.
    Result<HttpReply> Request(const std::string& method,
                              const std::string& target,
                              const std::string& body,
                              const std::function<void(std::string_view)>& on_data = {},
                              std::chrono::milliseconds timeout = std::chrono::minutes(30));

    Result<HttpReply> Get(const std::string& target) { return Request("GET", target, ""); }

    Result<HttpReply> Post(const std::string& target, const std::string& body) {
        return Request("POST", target, body);
    }

    // Drops the connection (the next request opens a new one).
    void Close();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string host_;
    int port_;
};

// Splits a server-sent event stream into events as bytes arrive: Feed() returns each completed
// event's name ("message" when none) and data (data lines joined by '\n'). Comment lines are
// skipped; a block of comments alone gives an event with empty data.
class SseParser {
public:
    struct Event {
        std::string name;
        std::string data;
    };

    template <typename F>
    void Feed(std::string_view bytes, F&& on_event) {
        for (char c : bytes) {  // CRLF line ends count as LF
            if (c != '\r') {
                pending_ += c;
            }
        }
        for (std::size_t end; (end = pending_.find("\n\n")) != std::string::npos;) {
            on_event(Parse(std::string_view(pending_).substr(0, end)));
            pending_.erase(0, end + 2);
        }
    }

private:
    static Event Parse(std::string_view block);
    std::string pending_;
};

}  // namespace kvs::bench
