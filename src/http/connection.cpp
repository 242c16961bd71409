#include "http/connection.h"

#include "common/guard.h"

#include <chrono>
#include <cstdio>
#include <exception>

namespace kvs::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kHeaderLimit = std::size_t{16} * 1024;

int HexValue(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// %XX and '+' decoding; a malformed escape is kept as is.
std::string UrlDecode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
                   HexValue(s[i + 2]) >= 0) {
            out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

void SplitTarget(std::string_view target, HttpRequest& r) {
    const std::size_t q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q == std::string_view::npos) {
        return;
    }
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const std::size_t amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const std::size_t eq = pair.find('=');
        r.query[UrlDecode(pair.substr(0, eq))] =
            eq == std::string_view::npos ? "" : UrlDecode(pair.substr(eq + 1));
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    }
}

}  // namespace

ConnectionHost::ConnectionHost(const ServerOptions& o, HttpServer::Handler h, MetricsRegistry& m)
    : options(o),
      handler(std::move(h)),
      streams(m.GetGauge("kvs_http_streams", "Open server-sent event streams")),
      bytes_in(m.GetCounter("kvs_http_bytes_in_total", "Request bytes read")),
      bytes_out(m.GetCounter("kvs_http_bytes_out_total", "Response bytes written")) {}

Connection::Connection(tcp::socket socket, ConnectionHost& server)
    : stream_(std::move(socket)),
      server_(server),
      timer_(stream_.get_executor()),
      write_timer_(stream_.get_executor()) {}

void Connection::Run() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
}

void Connection::Close() {
    // A response being written is finished first (graceful shutdown must not cut an answer that
    // is already on its way); its write's completion shuts the connection down.
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
        if (self->replying_) {
            self->close_after_reply_ = true;
            return;
        }
        self->Shutdown();
    });
}

void Connection::Reply(HttpResponse response) {
    asio::post(stream_.get_executor(),
               [self = shared_from_this(), r = std::move(response)] { self->SendResponse(r); });
}

void Connection::Post(std::function<void()> work) {
    asio::post(stream_.get_executor(), [self = shared_from_this(), w = std::move(work)] {
        Guarded("a reply on the connection", w);
    });
}

void Connection::BeginStream() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->StartStream(); });
}

void Connection::Write(std::string chunk) {
    asio::post(stream_.get_executor(), [self = shared_from_this(), c = std::move(chunk)] {
        self->queue_.push_back(c);
        self->Flush();
    });
}

void Connection::End() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
        self->ending_ = true;
        self->Flush();
    });
}

void Connection::Pull(std::function<std::optional<std::string>()> next) {
    asio::post(stream_.get_executor(), [self = shared_from_this(), n = std::move(next)] {
        self->pull_ = n;
        self->Flush();
    });
}

void Connection::Wake() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->Flush(); });
}

void Connection::OnClose(std::function<void()> on_close) {
    asio::post(stream_.get_executor(), [self = shared_from_this(), f = std::move(on_close)] {
        if (self->closed_) {
            f();
        } else {
            self->on_close_ = f;
        }
    });
}

void Connection::Read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(server_.options.max_body_bytes);
    stream_.expires_after(std::chrono::seconds(n_requests_ == 0 ? server_.options.request_timeout_s
                                                                : server_.options.idle_timeout_s));
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Connection::OnRead, shared_from_this()));
}

void Connection::OnRead(error_code ec, std::size_t n) {
    server_.bytes_in.Add(n);
    if (ec == bhttp::error::body_limit) {
        keep_alive_ = false;
        SendResponse(ErrorResponse(413, "too_large",
                                   "the body is larger than " +
                                       std::to_string(server_.options.max_body_bytes) + " bytes"));
        return;
    }
    if (ec == bhttp::error::header_limit) {
        keep_alive_ = false;
        SendResponse(ErrorResponse(431, "too_large", "the request head is larger than 16 KiB"));
        return;
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset) {
        return Shutdown();
    }
    if (ec) {
        keep_alive_ = false;
        SendResponse(ErrorResponse(400, "invalid_argument", "malformed HTTP request"));
        return;
    }
    ++n_requests_;
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    HttpRequest r;
    r.method = std::string(req.method_string());
    SplitTarget(req.target(), r);
    r.authorization = std::string(req[bhttp::field::authorization]);
    r.body = std::move(req.body());
    error_code ep_ec;
    const auto remote = stream_.socket().remote_endpoint(ep_ec);
    r.loopback = !ep_ec && remote.address().is_loopback();
    stream_.expires_never();  // the handler may take its time (queries)
    is_head_ = r.method == "HEAD";
    try {
        server_.handler(std::move(r), shared_from_this());
    } catch (const std::exception& e) {  // a bug must not take the server down
        std::fprintf(stderr, "kvstream: request handler failed: %s\n", e.what());
        keep_alive_ = false;
        SendResponse(ErrorResponse(500, "internal", "the request could not be handled"));
    }
}

void Connection::SendResponse(const HttpResponse& r) {
    if (closed_ || streaming_) {
        return;
    }
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(r.status), 11);
    res->set(bhttp::field::server, "kvstream");
    if (!r.content_type.empty()) {
        res->set(bhttp::field::content_type, r.content_type);
    }
    for (const auto& [name, value] : r.headers) {
        res->set(name, value);
    }
    res->keep_alive(keep_alive_ && !server_.stopped);
    if (is_head_) {  // the head of what GET would send, no body
        res->content_length(r.body.size());
    } else {
        res->body() = r.body;
        if (r.status != 204) {  // a 204 carries no body and no Content-Length
            res->prepare_payload();
        }
    }
    stream_.expires_after(std::chrono::seconds(server_.options.request_timeout_s));
    replying_ = true;
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res](error_code ec, std::size_t n) {
                           self->replying_ = false;
                           self->server_.bytes_out.Add(n);
                           if (ec || !res->keep_alive() || self->close_after_reply_) {
                               return self->Shutdown();
                           }
                           self->Read();
                       });
}

void Connection::StartStream() {
    if (closed_ || streaming_) {
        return;
    }
    streaming_ = true;
    server_.streams.Add(1);
    queue_.push_front(
        "HTTP/1.1 200 OK\r\nServer: kvstream\r\nContent-Type: text/event-stream\r\n"
        "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n");
    WatchForClose();
    KeepAlive();
    Flush();
}

void Connection::WatchForClose() {
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
        if (self->closed_ || ec == asio::error::operation_aborted) {
            return;
        }
        tcp::socket& socket = self->stream_.socket();
        char byte;
        error_code rec;
        socket.non_blocking(true, rec);
        const std::size_t n = rec ? 0 : socket.read_some(asio::buffer(&byte, 1), rec);
        error_code ignored;
        socket.non_blocking(false, ignored);
        if (rec == asio::error::would_block || rec == asio::error::try_again) {
            return self->WatchForClose();  // nothing to read after all
        }
        if (ec || rec || n == 0) {
            return self->Shutdown();
        }
        self->WatchForClose();  // stray bytes: ignore
    });
}

void Connection::KeepAlive() {
    timer_.expires_after(std::chrono::seconds(server_.options.keepalive_s));
    timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (ec || self->closed_) {
            return;
        }
        self->queue_.emplace_back(": keep-alive\n\n");
        self->Flush();
        self->KeepAlive();
    });
}

void Connection::Flush() {
    if (closed_ || writing_ || !streaming_) {
        return;
    }
    if (queue_.empty() && pull_) {
        if (auto chunk = pull_()) {
            queue_.push_back(std::move(*chunk));
        }
    }
    if (queue_.empty()) {
        if (ending_) {
            Shutdown();
        }
        return;
    }
    writing_ = true;
    auto chunk = std::make_shared<std::string>(std::move(queue_.front()));
    queue_.pop_front();
    // A client that stops reading is dropped once a write makes no progress for a while.
    write_timer_.expires_after(std::chrono::seconds(4 * server_.options.keepalive_s));
    write_timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec && self->writing_) {
            self->Shutdown();
        }
    });
    asio::async_write(stream_.socket(), asio::buffer(*chunk),
                      [self = shared_from_this(), chunk](error_code ec, std::size_t n) {
                          self->writing_ = false;
                          self->write_timer_.cancel();
                          self->server_.bytes_out.Add(n);
                          if (ec) {
                              return self->Shutdown();
                          }
                          self->Flush();
                      });
}

void Connection::Shutdown() {
    if (closed_) {
        return;
    }
    closed_ = true;
    if (streaming_) {
        server_.streams.Add(-1);
    }
    timer_.cancel();
    write_timer_.cancel();
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
    pull_ = nullptr;
    if (on_close_) {
        auto f = std::move(on_close_);
        on_close_ = nullptr;
        f();
    }
    server_.Forget(shared_from_this());
}

}  // namespace kvs::http
