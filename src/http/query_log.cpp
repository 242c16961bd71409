#include "http/query_log.h"

#include <chrono>

namespace kvs::http {

std::int64_t UnixMillis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void QueryLog::Record(TenantId tenant, const QueryRecord& record) {
    std::lock_guard lock(mu_);
    auto& ring = by_tenant_[tenant];
    ring.push_back(record);
    if (ring.size() > kPerTenant) {
        ring.pop_front();
    }
}

std::vector<QueryRecord> QueryLog::Recent(TenantId tenant) const {
    std::lock_guard lock(mu_);
    auto it = by_tenant_.find(tenant);
    return it == by_tenant_.end() ? std::vector<QueryRecord>()
                                  : std::vector<QueryRecord>(it->second.begin(), it->second.end());
}

}  // namespace kvs::http
