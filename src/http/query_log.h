#pragma once
// The server's own record of recent session queries, per tenant: what the dashboard plots
// (latency against context size). A bounded ring per tenant; any thread may record and read.

#include "runtime/runtime.h"

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

namespace kvs::http {

struct QueryRecord {
    SessionId session = 0;
    int context_tokens = 0;
    int prompt_tokens = 0;
    int answer_tokens = 0;
    double queued_ms = 0;
    double total_ms = 0;  // the engine's time for it (0 for a cached answer)
    bool cached = false;
    std::int64_t at_ms = 0;  // Unix milliseconds when it was answered
};

// Now, in Unix milliseconds (QueryRecord::at_ms).
std::int64_t UnixMillis();

class QueryLog {
public:
    static constexpr std::size_t kPerTenant = 256;

    void Record(TenantId tenant, const QueryRecord& record);

    // The tenant's recent queries, oldest first.
    std::vector<QueryRecord> Recent(TenantId tenant) const;

private:
    mutable std::mutex mu_;
    std::map<TenantId, std::deque<QueryRecord>> by_tenant_;
};

}  // namespace kvs::http
