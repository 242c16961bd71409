// The future forms of the Runtime's calls (runtime.h): each passes a reply that fulfils a
// promise to the callback form.

#include "runtime/runtime.h"

#include <future>
#include <memory>

namespace kvs {
namespace {

// The future form of a callback call: `call` receives the reply that fulfils the future.
template <typename T, typename Call>
std::future<T> ToFuture(Call call) {
    auto promise = std::make_shared<std::promise<T>>();
    std::future<T> future = promise->get_future();
    call([promise](T value) { promise->set_value(std::move(value)); });
    return future;
}

}  // namespace

std::future<Result<SessionId>> Runtime::CreateSession(TenantId tenant, SessionOptions options) {
    return ToFuture<Result<SessionId>>(
        [&](auto reply) { CreateSession(tenant, std::move(options), std::move(reply)); });
}

std::future<Status> Runtime::CloseSession(TenantId tenant, SessionId id) {
    return ToFuture<Status>([&](auto reply) { CloseSession(tenant, id, std::move(reply)); });
}

std::future<Result<SessionInfo>> Runtime::Info(TenantId tenant, SessionId id) {
    return ToFuture<Result<SessionInfo>>([&](auto reply) { Info(tenant, id, std::move(reply)); });
}

std::future<Result<AppendResult>> Runtime::Append(TenantId tenant, SessionId id, std::string text) {
    return ToFuture<Result<AppendResult>>(
        [&](auto reply) { Append(tenant, id, std::move(text), false, std::move(reply)); });
}

std::future<Result<AppendResult>> Runtime::AppendAndWait(TenantId tenant,
                                                         SessionId id,
                                                         std::string text) {
    return ToFuture<Result<AppendResult>>(
        [&](auto reply) { Append(tenant, id, std::move(text), true, std::move(reply)); });
}

std::future<Result<Answer>> Runtime::Query(TenantId tenant, SessionId id, QueryOptions options) {
    return ToFuture<Result<Answer>>(
        [&](auto reply) { Query(tenant, id, std::move(options), std::move(reply)); });
}

std::future<Result<Answer>> Runtime::Stateless(TenantId tenant,
                                               std::string prompt,
                                               QueryOptions options) {
    return ToFuture<Result<Answer>>([&](auto reply) {
        Stateless(tenant, std::move(prompt), std::move(options), false, std::move(reply));
    });
}

std::future<Result<FlashId>> Runtime::AddFlash(TenantId tenant,
                                               SessionId id,
                                               FlashOptions options) {
    return ToFuture<Result<FlashId>>(
        [&](auto reply) { AddFlash(tenant, id, std::move(options), std::move(reply)); });
}

std::future<Status> Runtime::RemoveFlash(TenantId tenant, SessionId id, FlashId flash) {
    return ToFuture<Status>([&](auto reply) { RemoveFlash(tenant, id, flash, std::move(reply)); });
}

}  // namespace kvs
