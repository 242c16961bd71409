#pragma once
// Where kvstream keeps generated things, and the embedded default model.

#include "common/status.h"
#include "engine/model_maker.h"

#include <string>

namespace kvs {

// $KVSTREAM_CACHE, else $XDG_CACHE_HOME/kvstream, else ~/.cache/kvstream.
std::string CacheDir();

// The default model of `kvstream demo`: a SmolLM2-135M-shaped twin with random weights (Q8_0).
inline constexpr const char* kDefaultShape = "smollm2-135m";

// Returns the path of a cached shape twin, making it first (with a progress bar) when missing.
Result<std::string> EnsureShapeTwin(const std::string& shape, WeightType type);

// Setup failures end a command (main prints the message): throws std::runtime_error with
// "<what>: <status>" when `st` is not ok.
void Check(const Status& st, const std::string& what);

// Parses "512,2048,8192"; kInvalidArgument on anything else.
Result<std::vector<int>> ParseIntList(const std::string& text);

}  // namespace kvs
