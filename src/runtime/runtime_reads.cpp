// The Runtime's calls answered on the caller's thread without the engine thread (the contract
// is in runtime.h): flash listings, subscriptions and metrics.

#include "runtime/runtime.h"

namespace kvs {

Result<std::vector<FlashInfo>> Runtime::ListFlash(TenantId tenant, SessionId id) const {
    return board_->List(tenant, id);
}

bool Runtime::Owns(TenantId tenant, SessionId id) const {
    return board_->Owns(tenant, id);
}

Result<std::shared_ptr<Subscription>> Runtime::Subscribe(TenantId tenant,
                                                         SessionId id,
                                                         const SubscribeOptions& options) {
    if (options.capacity < 1) {
        return InvalidArgument("a subscription buffers at least one event");
    }
    const auto unknown = [id] { return NotFound("unknown session " + std::to_string(id)); };
    if (!board_->Owns(tenant, id)) {
        return unknown();
    }
    auto sub = hub_.Subscribe(id, options);
    if (!board_->Owns(tenant, id)) {  // closed meanwhile: it would never hear kClosed
        return unknown();
    }
    return sub;
}

std::string Runtime::MetricsTable() {
    return metrics_->RenderTable();
}

std::string Runtime::MetricsPrometheus() {
    return metrics_->RenderPrometheus() + CpuBackendPrometheus();
}

}  // namespace kvs
