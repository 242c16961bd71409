#pragma once

#include <cstddef>
#include <string_view>

namespace kvs {

// The length of the UTF-8 sequence `lead` starts: 1 for ASCII, 2..4, or 0 for a byte no
// well-formed sequence starts with.
int Utf8SequenceLength(unsigned char lead);

// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF).
bool IsValidUtf8(std::string_view text);

// The length of the longest prefix of `text` that ends on a code point boundary: the bytes after
// it are the start of an incomplete multi-byte sequence (useful when streaming token pieces).
std::size_t CompleteUtf8Prefix(std::string_view text);

}  // namespace kvs
