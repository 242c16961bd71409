#include "bench/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

namespace kvs::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
Status Broken(std::string message) {
    return Unavailable(std::move(message));
}

Status Broken(const std::string& where, const beast::error_code& ec) {
    return Broken(where + (ec == beast::error::timeout ? "timed out" : ec.message()));
}
}  // namespace

struct HttpClient::Impl {
    asio::io_context ioc;
    std::optional<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
};

HttpClient::HttpClient(std::string host, int port)
    : impl_(std::make_unique<Impl>()), host_(std::move(host)), port_(port) {}

HttpClient::~HttpClient() {
    Close();
}

void HttpClient::Close() {
    if (impl_->stream) {
        beast::error_code ec;
        impl_->stream->socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        impl_->stream.reset();
    }
    impl_->buffer.clear();
}

Result<HttpReply> HttpClient::Request(const std::string& method,
                                      const std::string& target,
                                      const std::string& body,
                                      const std::function<void(std::string_view)>& on_data,
                                      std::chrono::milliseconds timeout) {
    const std::string where = method + " " + target + ": ";
    // A kept-alive connection the server closed in the meantime fails at once; retry once on a
    // fresh connection when nothing of the reply was read.
    for (int attempt = 0; attempt < 2; ++attempt) {
        const bool reused = impl_->stream.has_value();
        beast::error_code ec;
        if (!impl_->stream) {
            impl_->stream.emplace(impl_->ioc);
            asio::ip::tcp::resolver resolver(impl_->ioc);
            auto endpoints = resolver.resolve(host_, std::to_string(port_), ec);
            if (!ec) {
                impl_->stream->expires_after(std::chrono::seconds(10));
                impl_->stream->connect(endpoints, ec);
            }
            if (ec) {
                Close();
                return Broken(where + "cannot connect: " + ec.message());
            }
        }
        beast::tcp_stream& s = *impl_->stream;
        http::request<http::string_body> req(http::string_to_verb(method), target, 11);
        req.set(http::field::host, host_);
        req.keep_alive(true);
        if (!body.empty()) {
            req.set(http::field::content_type, "application/json");
            req.body() = body;
        }
        req.prepare_payload();
        s.expires_after(timeout);
        http::write(s, req, ec);
        http::response_parser<http::buffer_body> parser;
        parser.body_limit(boost::none);
        if (!ec) {
            http::read_header(s, impl_->buffer, parser, ec);
        }
        if (ec) {
            Close();
            if (reused && attempt == 0 && ec != beast::error::timeout) {
                continue;
            }
            return Broken(where, ec);
        }
        HttpReply reply;
        reply.status = static_cast<int>(parser.get().result_int());
        reply.server_timing = std::string(parser.get()["Server-Timing"]);
        char piece[16384];
        while (!parser.is_done()) {
            parser.get().body().data = piece;
            parser.get().body().size = sizeof piece;
            http::read_some(s, impl_->buffer, parser, ec);
            if (ec == http::error::need_buffer) {
                ec = {};
            }
            if (ec) {
                Close();
                return Broken(where, ec);
            }
            const std::size_t n = sizeof piece - parser.get().body().size;
            if (n > 0) {
                reply.body.append(piece, n);
                if (on_data) {
                    on_data(std::string_view(piece, n));
                }
            }
        }
        if (!parser.get().keep_alive()) {
            Close();
        }
        return reply;
    }
    return Broken(where + "connection lost");
}

SseParser::Event SseParser::Parse(std::string_view block) {
    Event e{"message", ""};
    bool first = true;
    while (!block.empty()) {
        const std::size_t nl = block.find('\n');
        std::string_view line = block.substr(0, nl);
        block = nl == std::string_view::npos ? std::string_view() : block.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        auto value = [&](std::size_t n) {
            std::string_view v = line.substr(n);
            return v.starts_with(' ') ? v.substr(1) : v;
        };
        if (line.starts_with("event:")) {
            e.name = value(6);
        } else if (line.starts_with("data:")) {
            if (!first) {
                e.data += '\n';
            }
            e.data += value(5);
            first = false;
        }
    }
    return e;
}

}  // namespace kvs::bench
