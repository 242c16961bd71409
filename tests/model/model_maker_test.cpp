// make-model: shape twins have the real model's shape and tokenizer, and are deterministic.

#include "engine/model_maker.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <iterator>
#include <string>
#include <vector>

namespace kvs {
namespace {

namespace fs = std::filesystem;

std::string TestPath(const std::string& file) {
    fs::create_directories(KVSTREAM_TEST_MODEL_DIR);
    return std::string(KVSTREAM_TEST_MODEL_DIR) + "/" + file;
}

std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

MakeModelOptions SmallTwin(const std::string& out_path, std::uint32_t seed) {
    MakeModelOptions o;
    o.shape = "smollm2-135m";
    o.out_path = out_path;
    o.type = WeightType::kQ8_0;
    o.seed = seed;
    o.n_layer = 1;
    return o;
}

TEST(ModelMakerTest, KnowsTheThreeShapes) {
    ASSERT_EQ(KnownShapes().size(), 3U);
    const ModelShape* qwen = FindShape("qwen2.5-0.5b");
    ASSERT_NE(qwen, nullptr);
    EXPECT_EQ(qwen->arch, "qwen2");
    EXPECT_TRUE(qwen->qkv_bias);
    ASSERT_NE(FindShape("smollm2-135m"), nullptr);
    ASSERT_NE(FindShape("llama3.2-1b"), nullptr);
    EXPECT_EQ(FindShape("gpt-5"), nullptr);
}

TEST(ModelMakerTest, ParsesWeightTypes) {
    ASSERT_TRUE(ParseWeightType("f32").ok());
    EXPECT_EQ(*ParseWeightType("f32"), WeightType::kF32);
    EXPECT_EQ(*ParseWeightType("f16"), WeightType::kF16);
    EXPECT_EQ(*ParseWeightType("q8_0"), WeightType::kQ8_0);
    EXPECT_EQ(*ParseWeightType("Q8_0"), WeightType::kQ8_0);
    EXPECT_EQ(ParseWeightType("q5_k").status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ParseWeightType("").status().code(), StatusCode::kInvalidArgument);
    EXPECT_STREQ(WeightTypeName(WeightType::kQ8_0), "q8_0");
    EXPECT_EQ(*ParseWeightType("q4_0"), WeightType::kQ4_0);
    EXPECT_STREQ(WeightTypeName(WeightType::kQ4_0), "q4_0");
}

TEST(ModelMakerTest, UnknownShapeIsAnError) {
    MakeModelOptions o;
    o.shape = "no-such-model";
    o.out_path = TestPath("never-written.gguf");
    const Status st = MakeModel(o);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("smollm2-135m"), std::string::npos) << "lists the known shapes";
    EXPECT_FALSE(fs::exists(o.out_path));
}

TEST(ModelMakerTest, MissingVocabIsNotFound) {
    MakeModelOptions o = SmallTwin(TestPath("never-written.gguf"), 1);
    o.vocab_dir = TestPath("no-such-vocab-dir");
    EXPECT_EQ(MakeModel(o).code(), StatusCode::kNotFound);
}

// The names in `dir` (empty when it does not exist).
std::vector<std::string> Entries(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

TEST(ModelMakerTest, UnwritablePathIsAnErrorAndLeavesNothing) {
    // A folder that cannot be made: refused before anything is written.
    const Status st = MakeModel(SmallTwin("/proc/kvstream-no-such-dir/twin.gguf", 1));
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
    EXPECT_FALSE(fs::exists("/proc/kvstream-no-such-dir"));
    // A destination that fails only after the whole file is written (a non-empty folder where
    // the file should go: the final rename fails): the error names it, and the temporary file
    // is gone, so the folder holds exactly what it held before.
    const fs::path dir = TestPath("maker-leftovers");
    fs::remove_all(dir);
    fs::create_directories(dir / "twin.gguf");
    std::ofstream(dir / "twin.gguf" / "keep") << "x";
    const Status late = MakeModel(SmallTwin((dir / "twin.gguf").string(), 1));
    EXPECT_FALSE(late.ok());
    EXPECT_NE(late.message().find("twin.gguf"), std::string::npos) << late.ToString();
    EXPECT_EQ(Entries(dir), std::vector<std::string>{"twin.gguf"}) << "a temporary file was left";
    EXPECT_EQ(Entries(dir / "twin.gguf"), std::vector<std::string>{"keep"});
    fs::remove_all(dir);
}

TEST(ModelMakerTest, InspectRejectsMissingAndNonGgufFiles) {
    EXPECT_EQ(InspectModelFile(TestPath("missing.gguf")).status().code(), StatusCode::kNotFound);
    const std::string junk = TestPath("junk.gguf");
    std::ofstream(junk) << "not a gguf file";
    EXPECT_EQ(InspectModelFile(junk).status().code(), StatusCode::kInvalidArgument);
    fs::remove(junk);
}

// A 2-layer Qwen2.5-0.5B twin in F32: the real layer shape, biases and tokenizer.
TEST(ModelMakerTest, QwenTwinHasTheRealShape) {
    MakeModelOptions o;
    o.shape = "qwen2.5-0.5b";
    o.out_path = TestPath("maker-test-qwen2.5-0.5b-2layer-f32.gguf");
    o.type = WeightType::kF32;
    o.n_layer = 2;
    int calls = 0;
    int last_total = 0;
    o.progress = [&](int done, int total) {
        ++calls;
        EXPECT_EQ(done, calls);
        last_total = total;
    };
    const Status st = MakeModel(o);
    ASSERT_TRUE(st.ok()) << st.ToString();

    Result<ModelFileInfo> info = InspectModelFile(o.out_path);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->arch, "qwen2");
    EXPECT_NE(info->name.find("random weights"), std::string::npos);
    EXPECT_EQ(info->n_layer, 2);
    EXPECT_EQ(info->n_embd, 896);
    EXPECT_EQ(info->n_head, 14);
    EXPECT_EQ(info->n_head_kv, 2);
    EXPECT_EQ(info->n_ff, 4864);
    EXPECT_EQ(info->n_vocab, 151936);  // the real Qwen2 tokenizer
    EXPECT_EQ(info->embd_type, "f32");
    // token_embd + output_norm (tied: no output.weight), then per layer 12 tensors:
    // attn_norm, q, k, v, q/k/v biases, attn_output, ffn_norm, gate, up, down.
    EXPECT_EQ(info->n_tensors, 2 + 2 * 12);
    EXPECT_EQ(calls, info->n_tensors);
    EXPECT_EQ(last_total, info->n_tensors);
    const std::int64_t embd = 896;
    const std::int64_t kv = 128;  // head_dim 896 / 14 = 64, times 2 kv heads
    const std::int64_t ff = 4864;
    const std::int64_t per_layer =
        embd + embd * embd + 2 * embd * kv + embd + 2 * kv + embd * embd + embd + 3 * embd * ff;
    EXPECT_EQ(info->n_params, 151936 * embd + embd + 2 * per_layer);
    EXPECT_EQ(info->tensor_bytes, static_cast<std::uint64_t>(info->n_params) * 4U);
    EXPECT_GT(info->file_bytes, info->tensor_bytes);
    fs::remove(o.out_path);  // 640 MB; not reused by other tests
}

TEST(ModelMakerTest, SameSeedGivesTheSameBytes) {
    const std::string a = TestPath("maker-test-seed-a.gguf");
    const std::string b = TestPath("maker-test-seed-b.gguf");
    const std::string c = TestPath("maker-test-seed-c.gguf");
    ASSERT_TRUE(MakeModel(SmallTwin(a, 7)).ok());
    ASSERT_TRUE(MakeModel(SmallTwin(b, 7)).ok());
    ASSERT_TRUE(MakeModel(SmallTwin(c, 8)).ok());
    const std::string bytes_a = ReadAll(a);
    EXPECT_GT(bytes_a.size(), 1000000U);
    EXPECT_TRUE(bytes_a == ReadAll(b)) << "same seed, different files";
    const std::string bytes_c = ReadAll(c);
    EXPECT_EQ(bytes_a.size(), bytes_c.size());
    EXPECT_FALSE(bytes_a == bytes_c) << "a different seed should give different weights";
    for (const std::string& path : {a, b, c}) {
        fs::remove(path);
    }
    // No temporary files are left behind.
    for (const auto& entry : fs::directory_iterator(KVSTREAM_TEST_MODEL_DIR)) {
        EXPECT_EQ(entry.path().string().find("maker-test-seed"), std::string::npos) << entry.path();
    }
}

}  // namespace
}  // namespace kvs
