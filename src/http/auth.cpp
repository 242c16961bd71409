#include "http/auth.h"

#include "http/json_body.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sstream>

namespace kvs::http {

std::array<unsigned char, 32> Sha256(std::string_view data) {
    std::array<unsigned char, 32> out{};
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha256(), nullptr);
    return out;
}

Result<ApiKeys> ApiKeys::Load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return NotFound("cannot read the API keys file " + path);
    }
    std::stringstream text;
    text << in.rdbuf();
    auto doc = ParseJsonBody(text.str(), BodyLimits{.max_body_bytes = 16 << 20});
    if (!doc.ok()) {
        return InvalidArgument(path + ": " + doc.status().message());
    }
    const Json* keys = FindField(*doc, "keys");
    if (keys == nullptr || !keys->is_array()) {
        return InvalidArgument(path + ": expected {\"keys\": [{\"key\": ..., \"tenant\": ...}]}");
    }
    ApiKeys out;
    std::map<std::string, TenantId> tenants;
    for (std::size_t i = 0; i < keys->size(); ++i) {
        const Json& k = (*keys)[i];
        const std::string where = path + ": keys[" + std::to_string(i) + "]";
        if (!k.is_object()) {
            return InvalidArgument(where + " must be an object");
        }
        auto key = OptString(k, "key", 4096);
        auto tenant = OptString(k, "tenant", 256);
        if (!key.ok() || !tenant.ok() || !*key || !*tenant || (*key)->empty() ||
            (*tenant)->empty()) {
            return InvalidArgument(where + " needs a non-empty \"key\" and \"tenant\"");
        }
        const auto digest = Sha256(**key);
        for (const Entry& e : out.entries_) {
            if (e.digest == digest) {
                return InvalidArgument(where + ": the key is listed twice");
            }
        }
        auto [it, fresh] = tenants.emplace(**tenant, static_cast<TenantId>(tenants.size() + 1));
        out.entries_.push_back({digest, {it->second, it->first}});
    }
    if (out.entries_.empty()) {
        return InvalidArgument(path + ": no keys");
    }
    return out;
}

std::vector<Tenant> ApiKeys::tenants() const {
    if (!enabled()) {
        return {Tenant{0, "local"}};
    }
    std::vector<Tenant> out;
    for (const Entry& e : entries_) {
        if (std::none_of(out.begin(), out.end(),
                         [&](const Tenant& t) { return t.id == e.tenant.id; })) {
            out.push_back(e.tenant);
        }
    }
    return out;
}

std::optional<Tenant> ApiKeys::Authenticate(std::string_view authorization,
                                            bool loopback,
                                            std::string& why) const {
    if (!enabled()) {
        if (!loopback) {
            why = "only loopback clients are served without API keys (start with --api-keys)";
            return std::nullopt;
        }
        return Tenant{0, "local"};
    }
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization.empty()) {
        why = "missing Authorization header (Authorization: Bearer <key>)";
        return std::nullopt;
    }
    if (!authorization.starts_with(kBearer)) {
        why = "the Authorization header must be \"Bearer <key>\"";
        return std::nullopt;
    }
    const auto digest = Sha256(authorization.substr(kBearer.size()));
    const Tenant* found = nullptr;
    for (const Entry& e : entries_) {  // every entry, so the time does not say which matched
        if (CRYPTO_memcmp(e.digest.data(), digest.data(), digest.size()) == 0) {
            found = &e.tenant;
        }
    }
    if (found == nullptr) {
        why = "unknown API key";
        return std::nullopt;
    }
    return *found;
}

}  // namespace kvs::http
