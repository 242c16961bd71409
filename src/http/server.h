#pragma once
// The HTTP/1.1 server: Boost.Asio + Boost.Beast, asynchronous, a few I/O threads for any number
// of connections (each connection's work is serialized on its own strand). It parses requests,
// enforces the size and time limits, and hands each request to one Handler with an Exchange to
// answer through (exchange.h). It knows nothing of sessions or JSON.
//
// Two halves: this file and server.cpp are the acceptor (the listening socket, the I/O threads,
// the set of live connections); connection.h/.cpp is one connection (reading, replying,
// streaming, its timeouts).
//
// Threads: Start, port and Stop are called by the owner's thread, never from an I/O thread (Stop
// joins them). The Handler runs on an I/O thread, on the connection's strand, and must not block:
// it answers later through the Exchange, from any thread. Lifetime: the HttpServer outlives its
// connections (Stop closes them all before it joins the threads).
//
// Limits: request head 16 KiB; body max_body_bytes (413); a request must arrive within
// request_timeout_s (the connection closes); an idle keep-alive connection closes after
// idle_timeout_s; event streams get a ": keep-alive" comment every keepalive_s and never time out.

#include "common/metrics.h"
#include "common/status.h"
#include "http/exchange.h"

#include <functional>
#include <memory>
#include <string>

namespace kvs::http {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;  // 0: any free port (see HttpServer::port)
    int io_threads = 2;
    std::size_t max_body_bytes = std::size_t{1} << 20;
    int request_timeout_s = 30;
    int idle_timeout_s = 60;
    int keepalive_s = 15;
    std::size_t max_connections = 10000;  // more are accepted and closed at once
};

class HttpServer {
public:
    using Handler = std::function<void(HttpRequest, ExchangePtr)>;

    // Binds and starts serving. Errors: kUnavailable (address in use, bad host).
    static Result<std::unique_ptr<HttpServer>> Start(const ServerOptions& options,
                                                     Handler handler,
                                                     MetricsRegistry& metrics);

    ~HttpServer();  // Stop()
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    int port() const;

    // Stops accepting, closes every connection (open streams end), joins the I/O threads.
    void Stop();

    struct Impl;

private:
    explicit HttpServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace kvs::http
