#pragma once
// API keys: `Authorization: Bearer <key>` names a tenant. The keys file is JSON,
// {"keys": [{"key": "...", "tenant": "..."}]}; only SHA-256 digests of the keys are kept in
// memory, and a presented key is compared with every digest in constant time. With no keys the
// server serves loopback clients only, all as the tenant "local".

#include "common/status.h"
#include "session/session.h"

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvs::http {

struct Tenant {
    TenantId id = 0;
    std::string name;
};

class ApiKeys {
public:
    // No keys: loopback only.
    ApiKeys() = default;

    // Errors: kNotFound (no file), kInvalidArgument (malformed file, empty key or tenant, a key
    // listed twice).
    static Result<ApiKeys> Load(const std::string& path);

    bool enabled() const { return !entries_.empty(); }

    std::size_t size() const { return entries_.size(); }

    // Every tenant a key names (without keys: "local", id 0).
    std::vector<Tenant> tenants() const;

    // The tenant of a request with this Authorization header; nothing (and `why`: "missing
    // Authorization header", "unknown API key", "only loopback clients are served without API
    // keys") when it is refused (401 / 403).
    std::optional<Tenant> Authenticate(std::string_view authorization,
                                       bool loopback,
                                       std::string& why) const;

private:
    struct Entry {
        std::array<unsigned char, 32> digest;
        Tenant tenant;
    };

    std::vector<Entry> entries_;
};

std::array<unsigned char, 32> Sha256(std::string_view data);

}  // namespace kvs::http
