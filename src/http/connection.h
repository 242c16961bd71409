#pragma once
// One HTTP connection (the other half of server.h, which accepts them): reads requests with
// Boost.Beast, hands each to the server's Handler with itself as the Exchange, writes the reply or
// the event stream, and enforces the per-connection limits and timeouts of ServerOptions.
//
// Threads: every method runs on the connection's strand. The Exchange methods (and Run, Close)
// may be called from any thread: they post to the strand. Lifetime: shared; the reads, writes
// and timers in flight hold a reference, and so does the host's set of live connections until
// Shutdown() calls ConnectionHost::Forget. The host outlives every connection.
// Internal to http/: only server.cpp and connection.cpp include it.

#include "common/metrics.h"
#include "http/exchange.h"
#include "http/server.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace kvs::http {

class Connection;

// What connections share with the server that accepted them (HttpServer::Impl). The fields are
// set before the first connection and never change, except `stopped` (set once, by Stop).
struct ConnectionHost {
    ConnectionHost(const ServerOptions& o, HttpServer::Handler h, MetricsRegistry& m);
    virtual ~ConnectionHost() = default;
    ConnectionHost(const ConnectionHost&) = delete;
    ConnectionHost& operator=(const ConnectionHost&) = delete;

    // Called once by each connection, on its strand, when it has closed.
    virtual void Forget(const std::shared_ptr<Connection>& c) = 0;

    const ServerOptions options;
    const HttpServer::Handler handler;  // called on the connection's strand
    std::atomic<bool> stopped{false};   // no more keep-alive once set
    Gauge& streams;
    Counter& bytes_in;
    Counter& bytes_out;
};

class Connection final : public Exchange, public std::enable_shared_from_this<Connection> {
public:
    Connection(boost::asio::ip::tcp::socket socket, ConnectionHost& server);

    // Starts reading requests (posts to the strand).
    void Run();
    // Closes the connection (open streams end); posts to the strand. A response being written
    // is finished first, then the connection closes.
    void Close();

    // ---- Exchange ------------------------------------------------------------------------
    void Reply(HttpResponse response) override;
    void BeginStream() override;
    void Write(std::string chunk) override;
    void Post(std::function<void()> work) override;
    void End() override;
    void Pull(std::function<std::optional<std::string>()> next) override;
    void Wake() override;
    void OnClose(std::function<void()> on_close) override;

private:
    using error_code = boost::system::error_code;

    void Read();
    void OnRead(error_code ec, std::size_t n);
    void SendResponse(const HttpResponse& r);
    void StartStream();
    // A streaming client sends nothing more; a read completing means it closed (or misbehaves).
    // The read never blocks: a wait may complete without data (cancelled, or a spurious wakeup),
    // and a blocking read would then hold this I/O thread until the client sent something.
    void WatchForClose();
    void KeepAlive();
    void Flush();
    void Shutdown();

    boost::beast::tcp_stream stream_;
    ConnectionHost& server_;
    boost::asio::steady_timer timer_;
    boost::asio::steady_timer write_timer_;
    boost::beast::flat_buffer buffer_;
    std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
    int n_requests_ = 0;
    bool keep_alive_ = true;
    bool is_head_ = false;
    bool streaming_ = false;
    bool writing_ = false;            // a stream's chunk is being written
    bool replying_ = false;           // a response is being written
    bool close_after_reply_ = false;  // Close() came while replying_: shut down after it
    bool ending_ = false;
    bool closed_ = false;
    std::deque<std::string> queue_;
    std::function<std::optional<std::string>()> pull_;
    std::function<void()> on_close_;
};

}  // namespace kvs::http
