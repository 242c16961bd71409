#include "persist/snapshot.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string_view>

namespace kvs {
namespace {

constexpr std::string_view kMagic = "KVSSNAP1";

void Put32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        p[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}

void Put64(std::uint8_t* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        p[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}

std::uint32_t Get32(const std::uint8_t* p) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

std::uint64_t Get64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

std::vector<std::uint8_t> TokenBytes(std::span<const Token> tokens) {
    std::vector<std::uint8_t> out(tokens.size() * 4);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        Put32(out.data() + 4 * i, static_cast<std::uint32_t>(tokens[i]));
    }
    return out;
}

}  // namespace

std::vector<std::uint8_t> EncodeSnapshotHead(std::uint64_t session,
                                             const SnapshotExpectation& made_by,
                                             std::uint64_t log_version,
                                             std::span<const Token> tokens,
                                             std::span<const std::uint8_t> state) {
    const std::vector<std::uint8_t> token_bytes = TokenBytes(tokens);
    std::vector<std::uint8_t> out(kSnapshotHeaderBytes);
    std::memcpy(out.data(), kMagic.data(), kMagic.size());
    Put32(&out[8], kSnapshotVersion);
    Put32(&out[12], static_cast<std::uint32_t>(kSnapshotHeaderBytes));
    Put64(&out[16], session);
    Put64(&out[24], made_by.model_fingerprint);
    Put64(&out[32], made_by.kv_fingerprint);
    Put64(&out[40], log_version);
    Put64(&out[48], tokens.size());
    Put64(&out[56], state.size());
    Put64(&out[64], Xxh64(token_bytes));
    Put64(&out[72], Xxh64(state));
    Put64(&out[80], 0);
    Put64(&out[88], Xxh64(std::span(out.data(), 88)));
    out.insert(out.end(), token_bytes.begin(), token_bytes.end());
    return out;
}

std::vector<std::uint8_t> EncodeSnapshot(std::uint64_t session,
                                         const SnapshotExpectation& made_by,
                                         std::uint64_t log_version,
                                         std::span<const Token> tokens,
                                         std::span<const std::uint8_t> state) {
    std::vector<std::uint8_t> out =
        EncodeSnapshotHead(session, made_by, log_version, tokens, state);
    out.insert(out.end(), state.begin(), state.end());
    return out;
}

Status WriteSnapshotFile(const std::filesystem::path& path,
                         std::uint64_t session,
                         const SnapshotExpectation& made_by,
                         std::uint64_t log_version,
                         std::span<const Token> tokens,
                         std::span<const std::uint8_t> state) {
    const std::vector<std::uint8_t> head =
        EncodeSnapshotHead(session, made_by, log_version, tokens, state);
    return WriteFileAtomic(path, {head, state});
}

Result<SnapshotHeader> ParseSnapshotHeader(std::span<const std::uint8_t> bytes,
                                           std::uint64_t file_bytes) {
    if (bytes.size() < kSnapshotHeaderBytes) {
        return InvalidArgument("truncated: " + std::to_string(bytes.size()) +
                               " bytes, shorter than the 96-byte header");
    }
    const std::uint8_t* p = bytes.data();
    if (std::memcmp(p, kMagic.data(), kMagic.size()) != 0) {
        return InvalidArgument("not a kvstream snapshot (no KVSSNAP1 magic)");
    }
    if (Get32(p + 8) != kSnapshotVersion || Get32(p + 12) != kSnapshotHeaderBytes) {
        return InvalidArgument("snapshot format version " + std::to_string(Get32(p + 8)) +
                               " with a " + std::to_string(Get32(p + 12)) +
                               "-byte header; this build reads version 1 (96 bytes)");
    }
    if (Get64(p + 88) != Xxh64(bytes.first(88))) {
        return InvalidArgument("the header fails its checksum (corrupted)");
    }
    SnapshotHeader h;
    h.session = Get64(p + 16);
    h.model_fingerprint = Get64(p + 24);
    h.kv_fingerprint = Get64(p + 32);
    h.log_version = Get64(p + 40);
    h.n_tokens = Get64(p + 48);
    h.state_bytes = Get64(p + 56);
    h.tokens_checksum = Get64(p + 64);
    h.state_checksum = Get64(p + 72);
    // Sizes are checked against the file before anything is allocated from them.
    const std::uint64_t room = file_bytes - kSnapshotHeaderBytes;
    if (file_bytes < kSnapshotHeaderBytes || h.n_tokens > room / 4 ||
        h.state_bytes != room - 4 * h.n_tokens) {
        return InvalidArgument("truncated or padded: the header promises " +
                               std::to_string(h.n_tokens) + " tokens and " +
                               std::to_string(h.state_bytes) + " state bytes; the file has " +
                               std::to_string(file_bytes) + " bytes");
    }
    return h;
}

namespace {

Status CheckCompatible(const SnapshotHeader& h, const SnapshotExpectation& expect) {
    if (h.model_fingerprint != expect.model_fingerprint) {
        return InvalidArgument("made with another model (fingerprint differs)");
    }
    if (h.kv_fingerprint != expect.kv_fingerprint) {
        return InvalidArgument(
            "made with other KV settings (context size, cache types or "
            "flash attention differ)");
    }
    return Status::Ok();
}

Result<Tokens> DecodeTokens(const SnapshotHeader& h, std::span<const std::uint8_t> token_bytes) {
    if (Xxh64(token_bytes) != h.tokens_checksum) {
        return InvalidArgument("the tokens fail their checksum (corrupted)");
    }
    Tokens tokens(h.n_tokens);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = static_cast<Token>(Get32(token_bytes.data() + 4 * i));
    }
    return tokens;
}

}  // namespace

Result<Snapshot> DecodeSnapshot(std::span<const std::uint8_t> bytes,
                                const SnapshotExpectation& expect) {
    auto header = ParseSnapshotHeader(bytes, bytes.size());
    if (!header.ok()) {
        return header.status();
    }
    const SnapshotHeader& h = *header;
    KV_RETURN_IF_ERROR(CheckCompatible(h, expect));
    const auto state = bytes.subspan(kSnapshotHeaderBytes + 4 * h.n_tokens);
    auto tokens = DecodeTokens(h, bytes.subspan(kSnapshotHeaderBytes, 4 * h.n_tokens));
    if (!tokens.ok()) {
        return tokens.status();
    }
    if (Xxh64(state) != h.state_checksum) {
        return InvalidArgument("the sequence state fails its checksum (corrupted)");
    }
    Snapshot s;
    s.header = h;
    s.tokens = std::move(tokens).value();
    s.state.assign(state.begin(), state.end());
    return s;
}

Result<Snapshot> ReadSnapshotFile(const std::filesystem::path& path,
                                  const SnapshotExpectation& expect,
                                  bool with_state) {
    if (with_state) {
        auto bytes = ReadWholeFile(path);
        if (!bytes.ok()) {
            return bytes.status();
        }
        return DecodeSnapshot(*bytes, expect);
    }
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    std::ifstream in(path, std::ios::binary);
    if (ec || !in) {
        return NotFound("cannot open " + path.string());
    }
    std::vector<std::uint8_t> head(std::min<std::uintmax_t>(size, kSnapshotHeaderBytes));
    in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
    auto header = ParseSnapshotHeader(head, size);
    if (!header.ok()) {
        return header.status();
    }
    KV_RETURN_IF_ERROR(CheckCompatible(*header, expect));
    std::vector<std::uint8_t> token_bytes(4 * header->n_tokens);
    in.read(reinterpret_cast<char*>(token_bytes.data()),
            static_cast<std::streamsize>(token_bytes.size()));
    if (!in) {
        return Internal("cannot read the tokens of " + path.string());
    }
    auto tokens = DecodeTokens(*header, token_bytes);
    if (!tokens.ok()) {
        return tokens.status();
    }
    Snapshot s;
    s.header = *header;
    s.tokens = std::move(tokens).value();
    return s;
}

}  // namespace kvs
