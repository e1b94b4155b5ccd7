// The GGUF reader on well-formed and hostile files: every truncation point, bad magic and
// version, absurd counts, duplicate keys and tensors, misaligned or out-of-file data.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "docdsa/engine/gguf.h"
#include "gguf_writer.h"

namespace docdsa {
namespace {

using testing::GgufWriter;

std::vector<uint8_t> sample_file() {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("general.alignment", 32);
  w.add_u32("some.u32", 7);
  w.add_i32("some.i32", -3);
  w.add_u64("some.u64", 1ull << 40);
  w.add_f32("some.f32", 0.5f);
  w.add_bool("some.bool", true);
  w.add_strings("some.strings", {"a", "bc", ""});
  w.add_i32s("some.i32s", {1, 2, 3});
  w.add_f32s("some.f32s", {1.5f});
  std::vector<float> v(64 * 2, 0.25f);
  w.add_tensor("t.q8", {64, 2}, kernels::DType::Q8_0, v);
  w.add_tensor("t.f32", {64, 2}, kernels::DType::F32, v);
  return w.bytes();
}

TEST(Gguf, ReadsEveryMetadataTypeAndTensors) {
  auto f = gguf::File::from_bytes(sample_file(), "sample.gguf");
  ASSERT_TRUE(f.ok()) << f.error().message;
  const gguf::File& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(*g.get_uint("some.u32"), 7u);
  EXPECT_EQ(*g.get_uint("some.u64"), 1ull << 40);
  EXPECT_FALSE(g.get_uint("some.i32").ok());  // negative
  EXPECT_DOUBLE_EQ(*g.get_float("some.f32"), 0.5);
  EXPECT_TRUE(*g.get_bool("some.bool"));
  EXPECT_EQ(*g.get_string("general.architecture"), "llama");
  auto arr = g.get_array("some.strings", gguf::ValueType::kString);
  ASSERT_TRUE(arr.ok());
  EXPECT_EQ((*arr)->strings.size(), 3u);
  EXPECT_EQ((*arr)->strings[1], "bc");
  EXPECT_FALSE(g.get_array("some.i32s", gguf::ValueType::kFloat32).ok());
  ASSERT_EQ(g.tensors().size(), 2u);
  const gguf::TensorInfo* t = g.tensor("t.q8");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->nbytes, 2u * 2 * sizeof(kernels::BlockQ8_0));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % 32, reinterpret_cast<uintptr_t>(g.tensors()[0].data) % 32);
}

TEST(Gguf, TypeErrorsNameTheKey) {
  auto f = gguf::File::from_bytes(sample_file(), "sample.gguf");
  ASSERT_TRUE(f.ok());
  auto s = (*f)->get_string("some.u32");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("some.u32"), std::string::npos);
  auto m = (*f)->get_uint("missing.key");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("missing.key"), std::string::npos);
}

TEST(Gguf, EveryTruncationIsAnErrorNotACrash) {
  const auto full = sample_file();
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    auto f = gguf::File::from_bytes(cut, "cut.gguf");
    EXPECT_FALSE(f.ok()) << "truncated to " << n << " bytes was accepted";
    if (!f.ok()) {
      EXPECT_NE(f.error().message.find("cut.gguf"), std::string::npos);
    }
  }
}

TEST(Gguf, RejectsBadHeaders) {
  auto bytes = sample_file();
  auto bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_EQ(gguf::File::from_bytes(bad_magic, "x").error().code, ErrorCode::kCorrupt);
  auto v1 = bytes;
  v1[4] = 1;
  EXPECT_EQ(gguf::File::from_bytes(v1, "x").error().code, ErrorCode::kUnsupported);
  auto v2 = GgufWriter().bytes(2);  // an empty v2 file is fine
  EXPECT_TRUE(gguf::File::from_bytes(v2, "x").ok());
  auto huge_kv = bytes;
  const uint64_t big = 1ull << 60;
  std::memcpy(huge_kv.data() + 16, &big, 8);
  auto r = gguf::File::from_bytes(huge_kv, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("metadata count"), std::string::npos);
  auto huge_t = bytes;
  std::memcpy(huge_t.data() + 8, &big, 8);
  EXPECT_FALSE(gguf::File::from_bytes(huge_t, "x").ok());
}

TEST(Gguf, RejectsDuplicatesAndBadTensors) {
  GgufWriter dup;
  dup.add_u32("k", 1);
  dup.add_u32("k", 2);
  auto r = gguf::File::from_bytes(dup.bytes(), "x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("duplicate metadata key k"), std::string::npos);

  GgufWriter dupt;
  std::vector<float> v(32, 1.0f);
  dupt.add_tensor("a", {32}, kernels::DType::F32, v);
  dupt.add_tensor("a", {32}, kernels::DType::F32, v);
  EXPECT_NE(gguf::File::from_bytes(dupt.bytes(), "x").error().message.find("duplicate tensor a"), std::string::npos);

  GgufWriter align;
  align.add_u32("general.alignment", 24);
  EXPECT_NE(gguf::File::from_bytes(align.bytes(), "x").error().message.find("general.alignment"), std::string::npos);

  // Unknown tensor type: patch the type field of the only tensor.
  GgufWriter one;
  one.add_tensor("w", {32}, kernels::DType::F32, v);
  auto b = one.bytes();
  const size_t type_at = 24 + 8 + 1 + 4 + 8;  // header, name length, name, n_dims, ne[0]
  const uint32_t bogus = 99;
  std::memcpy(b.data() + type_at, &bogus, 4);
  auto u = gguf::File::from_bytes(b, "x");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(u.error().message.find("tensor w"), std::string::npos);
}

// general.alignment must be a power of two of at least 8 (the GGUF spec's multiple of 8): 0
// would divide by zero, 3 and 4 would misalign the tensor data.
TEST(Gguf, AlignmentMustBeAPowerOfTwoFromEight) {
  std::vector<float> v(32, 1.0f);
  for (uint32_t bad : {0u, 1u, 2u, 3u, 4u, 12u, 24u, 1u << 21}) {
    GgufWriter w;
    w.add_u32("general.alignment", bad);
    w.add_tensor("w", {32}, kernels::DType::F32, v);
    auto r = gguf::File::from_bytes(w.bytes(), "align.gguf");
    ASSERT_FALSE(r.ok()) << "alignment " << bad << " was accepted";
    EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
    EXPECT_NE(r.error().message.find("general.alignment"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("align.gguf"), std::string::npos) << r.error().message;
  }
  for (uint32_t good : {8u, 16u, 32u}) {
    GgufWriter w;
    w.add_u32("general.alignment", good);
    if (good == 32) w.add_tensor("w", {32}, kernels::DType::F32, v);  // the writer pads to 32
    auto r = gguf::File::from_bytes(w.bytes(), "align.gguf");
    ASSERT_TRUE(r.ok()) << good << ": " << r.error().message;
    EXPECT_EQ((*r)->alignment(), good);
  }
  GgufWriter signed_align;
  signed_align.add_i32("general.alignment", 32);
  EXPECT_FALSE(gguf::File::from_bytes(signed_align.bytes(), "x").ok());
}

TEST(Gguf, OpenReportsMissingAndEmptyFiles) {
  auto missing = gguf::File::open("/nonexistent/model.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("/nonexistent/model.gguf"), std::string::npos);
  char tmpl[] = "/tmp/docdsa-empty-XXXXXX";
  const int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  auto empty = gguf::File::open(tmpl);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("empty"), std::string::npos);
  unlink(tmpl);
}

}  // namespace
}  // namespace docdsa
