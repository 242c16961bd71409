#pragma once
// Plain token vocabulary shared by every module (mirrors libllama's typedefs without including it).

#include <cstdint>
#include <vector>

namespace kvs {

using Token = std::int32_t;  // a vocabulary id
using SeqId = std::int32_t;  // a libllama sequence (a "slot" in the KV cache)
using Pos = std::int32_t;    // a position inside one sequence

using Tokens = std::vector<Token>;

}  // namespace kvs
