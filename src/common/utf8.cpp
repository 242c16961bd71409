#include "common/utf8.h"

#include <cstdint>

namespace kvs {
namespace {

bool IsContinuation(std::uint8_t byte) {
    return (byte & 0xC0) == 0x80;
}

// The allowed range of the second byte, which rules out overlongs, surrogates and > U+10FFFF.
bool SecondByteOk(std::uint8_t lead, std::uint8_t second) {
    switch (lead) {
        case 0xE0:
            return second >= 0xA0 && second <= 0xBF;
        case 0xED:
            return second >= 0x80 && second <= 0x9F;
        case 0xF0:
            return second >= 0x90 && second <= 0xBF;
        case 0xF4:
            return second >= 0x80 && second <= 0x8F;
        default:
            return IsContinuation(second);
    }
}

}  // namespace

int Utf8SequenceLength(unsigned char lead) {
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        return 2;
    }
    if (lead >= 0xE0 && lead <= 0xEF) {
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        return 4;
    }
    return 0;
}

bool IsValidUtf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<std::uint8_t>(text[i]);
        const int len = Utf8SequenceLength(lead);
        if (len == 0 || i + len > text.size()) {
            return false;
        }
        if (len > 1 && !SecondByteOk(lead, static_cast<std::uint8_t>(text[i + 1]))) {
            return false;
        }
        for (int k = 2; k < len; ++k) {
            if (!IsContinuation(static_cast<std::uint8_t>(text[i + k]))) {
                return false;
            }
        }
        i += len;
    }
    return true;
}

std::size_t CompleteUtf8Prefix(std::string_view text) {
    // Look back at most 3 bytes for a lead byte whose sequence is cut off.
    const std::size_t n = text.size();
    for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
        const auto byte = static_cast<std::uint8_t>(text[n - back]);
        if (IsContinuation(byte)) {
            continue;
        }
        const int len = Utf8SequenceLength(byte);
        return (len > static_cast<int>(back)) ? n - back : n;
    }
    return n;
}

}  // namespace kvs
