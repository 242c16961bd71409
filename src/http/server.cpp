// The acceptor half of the HTTP server (server.h); the connections are in connection.cpp.

#include "http/server.h"

#include "http/connection.h"

#include <boost/asio.hpp>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace kvs::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// The acceptor: the listening socket, the I/O threads and the set of live connections.
struct HttpServer::Impl final : ConnectionHost {
    asio::io_context ioc;
    tcp::acceptor acceptor{asio::make_strand(ioc)};  // accepts and the close are serialized
    std::vector<std::thread> threads;
    Gauge& connections;
    std::mutex mu;
    std::set<std::shared_ptr<Connection>> live;  // guarded by mu

    Impl(const ServerOptions& o, Handler h, MetricsRegistry& m)
        : ConnectionHost(o, std::move(h), m),
          connections(m.GetGauge("kvs_http_connections", "Open HTTP connections")) {}

    // Accepts the next connection (on the acceptor's strand), then itself again.
    void Accept();
    void Forget(const std::shared_ptr<Connection>& c) override;
};

void HttpServer::Impl::Accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](error_code ec, tcp::socket socket) {
        if (stopped) {
            return;
        }
        if (!ec) {
            std::shared_ptr<Connection> c;
            {
                std::lock_guard lock(mu);  // Stop sets `stopped` before it snapshots `live`
                if (!stopped && live.size() < options.max_connections) {
                    c = std::make_shared<Connection>(std::move(socket), *this);
                    live.insert(c);
                    connections.Set(static_cast<double>(live.size()));
                }
            }
            if (c) {
                c->Run();
            }  // else: the socket closes as it goes out of scope
        } else if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
            // Out of file descriptors: retry shortly instead of spinning on the error.
            auto timer = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(50));
            timer->async_wait([this, timer](error_code) { Accept(); });
            return;
        }
        Accept();
    });
}

void HttpServer::Impl::Forget(const std::shared_ptr<Connection>& c) {
    std::lock_guard lock(mu);
    live.erase(c);
    connections.Set(static_cast<double>(live.size()));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const ServerOptions& options,
                                                      Handler handler,
                                                      MetricsRegistry& metrics) {
    auto impl = std::make_unique<Impl>(options, std::move(handler), metrics);
    error_code ec;
    const auto address = asio::ip::make_address(options.host, ec);
    if (ec) {
        return InvalidArgument("--host " + options.host + " is not an IP address");
    }
    const tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
    impl->acceptor.open(endpoint.protocol(), ec);
    if (!ec) {
        impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
        impl->acceptor.bind(endpoint, ec);
    }
    if (!ec) {
        impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        return Status(StatusCode::kUnavailable, "cannot listen on " + options.host + ":" +
                                                    std::to_string(options.port) + ": " +
                                                    ec.message());
    }
    impl->Accept();
    for (int i = 0; i < std::max(1, options.io_threads); ++i) {
        impl->threads.emplace_back([ioc = &impl->ioc] { ioc->run(); });
    }
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() {
    Stop();
}

int HttpServer::port() const {
    error_code ec;
    return impl_->acceptor.local_endpoint(ec).port();
}

void HttpServer::Stop() {
    if (impl_->stopped.exchange(true)) {
        return;
    }
    asio::post(impl_->acceptor.get_executor(), [impl = impl_.get()] {
        error_code ec;
        impl->acceptor.close(ec);
    });
    std::vector<std::shared_ptr<Connection>> open;
    {
        std::lock_guard lock(impl_->mu);
        open.assign(impl_->live.begin(), impl_->live.end());
    }
    for (auto& c : open) {
        c->Close();
    }
    // Connections close on their strands; then the context runs out of work.
    for (auto& t : impl_->threads) {
        t.join();
    }
}

}  // namespace kvs::http
