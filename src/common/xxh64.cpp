#include "common/xxh64.h"

#include <array>
#include <bit>
#include <cstddef>
#include <cstring>

namespace kvs {
namespace {

static_assert(std::endian::native == std::endian::little, "XXH64 here reads little-endian lanes");

constexpr std::uint64_t kP1 = 0x9E3779B185EBCA87ULL;
constexpr std::uint64_t kP2 = 0xC2B2AE3D27D4EB4FULL;
constexpr std::uint64_t kP3 = 0x165667B19E3779F9ULL;
constexpr std::uint64_t kP4 = 0x85EBCA77C2B2AE63ULL;
constexpr std::uint64_t kP5 = 0x27D4EB2F165667C5ULL;

std::uint64_t Load64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

std::uint64_t Round(std::uint64_t acc, std::uint64_t input) {
    return std::rotl(acc + input * kP2, 31) * kP1;
}

std::uint64_t Merge(std::uint64_t h, std::uint64_t v) {
    return (h ^ Round(0, v)) * kP1 + kP4;
}

}  // namespace

std::uint64_t Xxh64(std::span<const std::uint8_t> bytes) {
    const std::uint8_t* p = bytes.data();
    const std::size_t n = bytes.size();
    const std::uint8_t* const end = p + n;
    std::uint64_t h = kP5;
    if (n >= 32) {
        std::array<std::uint64_t, 4> v = {kP1 + kP2, kP2, 0, 0 - kP1};
        for (; end - p >= 32; p += 32) {
            for (std::size_t i = 0; i < 4; ++i) {
                v[i] = Round(v[i], Load64(p + 8 * i));
            }
        }
        h = std::rotl(v[0], 1) + std::rotl(v[1], 7) + std::rotl(v[2], 12) + std::rotl(v[3], 18);
        for (const std::uint64_t lane : v) {
            h = Merge(h, lane);
        }
    }
    h += n;
    for (; end - p >= 8; p += 8) {
        h = std::rotl(h ^ Round(0, Load64(p)), 27) * kP1 + kP4;
    }
    if (end - p >= 4) {
        std::uint32_t w = 0;
        std::memcpy(&w, p, sizeof(w));
        h = std::rotl(h ^ (w * kP1), 23) * kP2 + kP3;
        p += 4;
    }
    for (; p < end; ++p) {
        h = std::rotl(h ^ (*p * kP5), 11) * kP1;
    }
    h = (h ^ (h >> 33)) * kP2;
    h = (h ^ (h >> 29)) * kP3;
    return h ^ (h >> 32);
}

}  // namespace kvs
