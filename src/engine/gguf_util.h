#pragma once
// Small readers of GGUF metadata, shared by the shape-twin writer and InspectModelFile.
// Internal to engine/.

#include <string>

struct gguf_context;

namespace kvs {

// Entries of tokenizer.ggml.tokens (0 when absent).
int CountTokens(const gguf_context* ctx);

// An integer key (u32 or i32), 0 when absent or of another type.
int GetInt(const gguf_context* ctx, const std::string& key);

// A string key, "" when absent or of another type.
std::string GetString(const gguf_context* ctx, const char* key);

}  // namespace kvs
