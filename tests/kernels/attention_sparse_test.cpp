// Sparse (DSA) attention kernel (attention.h, SparseAttentionArgs): the SIMD builds against
// the scalar reference at awkward sizes (head dims, heads per group, tokens per block, list
// lengths off the 16-entry tiles and 128-entry chunks), with per-token masks, re-positioned
// keys in both RoPE pairings, split-K parts merged, and the same numbers as the blocked-cache
// kernel gives one token over its own list.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/fp16.h"

namespace docdsa::kernels {
namespace {

struct SparseFixture {
  int hd, heads, tokens, n_ctx;
  std::vector<float> q, cosv, sinv;
  std::vector<uint16_t> k, v;  // row-major, stride hd
  std::vector<int32_t> positions, shift;
  std::vector<uint32_t> mask;
  int words = 0;
  SparseFixture(int hd_, int heads_, int tokens_, int n_entries, int n_ctx_, double density, uint32_t seed)
      : hd(hd_), heads(heads_), tokens(tokens_), n_ctx(n_ctx_) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<double> ud(0.0, 1.0);
    q.resize(static_cast<size_t>(tokens) * heads * hd);
    for (auto& x : q) x = nd(rng) * 2.0f;
    k.resize(static_cast<size_t>(n_ctx) * hd);
    v.resize(k.size());
    for (auto& x : k) x = fp32_to_fp16(nd(rng));
    for (auto& x : v) x = fp32_to_fp16(nd(rng));
    std::vector<int32_t> all(static_cast<size_t>(n_ctx));
    for (int i = 0; i < n_ctx; ++i) all[static_cast<size_t>(i)] = i;
    std::shuffle(all.begin(), all.end(), rng);
    positions.assign(all.begin(), all.begin() + n_entries);
    std::sort(positions.begin(), positions.end());
    words = (n_entries + 31) / 32;
    mask.assign(static_cast<size_t>(tokens) * words, 0u);
    for (int t = 0; t < tokens; ++t)
      for (int j = 0; j < n_entries; ++j)
        if (ud(rng) < density || (t == 0 && j == n_entries - 1)) mask[static_cast<size_t>(t) * words + j / 32] |= 1u << (j % 32);
    // Rotation tables for shifts 0..63 over hd / 2 pairs.
    const int pairs = hd / 2;
    cosv.resize(static_cast<size_t>(64) * pairs);
    sinv.resize(cosv.size());
    for (int sh = 0; sh < 64; ++sh)
      for (int i = 0; i < pairs; ++i) {
        const double th = sh * std::pow(10000.0, -2.0 * i / hd);
        cosv[static_cast<size_t>(sh) * pairs + i] = static_cast<float>(std::cos(th));
        sinv[static_cast<size_t>(sh) * pairs + i] = static_cast<float>(std::sin(th));
      }
    shift.resize(static_cast<size_t>(n_entries));
    for (auto& s : shift) s = static_cast<int32_t>(rng() % 4 == 0 ? 0 : rng() % 64);
  }
  SparseAttentionArgs args(float* out, bool masked) const {
    SparseAttentionArgs a;
    a.head_dim = hd;
    a.n_heads = heads;
    a.n_tokens = tokens;
    a.q = q.data();
    a.q_stride = static_cast<int64_t>(heads) * hd;
    a.n_entries = static_cast<int32_t>(positions.size());
    a.positions = positions.data();
    if (masked) {
      a.mask = mask.data();
      a.mask_stride = words;
    }
    a.k = k.data();
    a.k_stride = hd;
    a.v = v.data();
    a.v_stride = hd;
    a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    a.out = out;
    a.out_stride = static_cast<int64_t>(heads) * hd;
    return a;
  }
  void rotate(SparseAttentionArgs& a, bool neox) const {
    a.key_shift = shift.data();
    a.rot_cos = cosv.data();
    a.rot_sin = sinv.data();
    a.rot_pairs = hd / 2;
    a.rot_neox = neox;
  }
  size_t out_size() const { return static_cast<size_t>(tokens) * heads * hd; }
};

std::vector<Isa> simd_isas() {
  std::vector<Isa> v;
  if (detected_isa() >= Isa::kAvx2) v.push_back(Isa::kAvx2);
  if (detected_isa() >= Isa::kAvx512) v.push_back(Isa::kAvx512);
  return v;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& ref, float tol, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isinf(ref[i])) {
      ASSERT_EQ(got[i], ref[i]) << what << " at " << i;
      continue;
    }
    ASSERT_NEAR(got[i], ref[i], tol) << what << " at " << i;
  }
}

// Runs `a` with the scalar reference, then with each SIMD kernel: outputs within 3e-5 and
// log-sum-exps within 2e-4 of it, and (rerun) a second run bit-identical to the first.
void expect_simd_matches_scalar(SparseAttentionArgs a, size_t out_size, size_t lse_size, const std::string& what, bool rerun) {
  std::vector<float> ref(out_size), lse_ref(lse_size);
  a.out = ref.data();
  a.lse = lse_ref.data();
  attention_sparse(a, Isa::kScalar);
  for (Isa isa : simd_isas()) {
    std::vector<float> got(out_size), lse(lse_size);
    a.out = got.data();
    a.lse = lse.data();
    attention_sparse(a, isa);
    const std::string w = what + " isa=" + isa_name(isa);
    expect_close(got, ref, 3e-5f, w);
    expect_close(lse, lse_ref, 2e-4f, w + " lse");
    if (rerun) {
      std::vector<float> again(out_size);
      a.out = again.data();
      attention_sparse(a, isa);
      EXPECT_EQ(got, again) << "not bit-identical on re-run: " << w;
    }
  }
}

TEST(AttentionSparse, SimdMatchesReferenceAtAwkwardSizes) {
  struct Case {
    int hd, heads, tokens, entries, ctx;
    double density;
  };
  const Case cases[] = {{64, 3, 16, 1000, 4000, 0.4}, {64, 3, 5, 17, 40, 0.5},     {64, 4, 1, 300, 700, 1.0},
                        {128, 6, 7, 259, 1000, 0.3},  {128, 2, 16, 129, 200, 0.9}, {16, 1, 3, 1, 5, 1.0},
                        {48, 5, 9, 333, 900, 0.05},   {80, 3, 2, 64, 64, 0.7},     {96, 7, 4, 200, 300, 0.5},
                        {112, 1, 16, 15, 31, 0.2},    {32, 2, 13, 513, 2000, 0.6}};
  for (const Case& c : cases)
    for (int variant = 0; variant < 4; ++variant) {  // unmasked, masked, rotated interleaved, rotated neox
      SparseFixture f(c.hd, c.heads, c.tokens, c.entries, c.ctx, c.density,
                      static_cast<uint32_t>(c.hd * 131 + c.entries + variant));
      SparseAttentionArgs a = f.args(nullptr, variant > 0);
      if (variant >= 2) f.rotate(a, variant == 3);
      expect_simd_matches_scalar(a, f.out_size(), static_cast<size_t>(c.tokens) * c.heads,
                                 "hd=" + std::to_string(c.hd) + " heads=" + std::to_string(c.heads) + " tokens=" +
                                     std::to_string(c.tokens) + " entries=" + std::to_string(c.entries) +
                                     " variant=" + std::to_string(variant),
                                 /*rerun=*/true);
    }
}

TEST(AttentionSparse, TokensWithEmptyMasksGiveZeros) {
  SparseFixture f(64, 3, 4, 100, 300, 0.5, 7);
  for (int j = 0; j < f.words; ++j) f.mask[static_cast<size_t>(2) * f.words + j] = 0u;  // token 2 reads nothing
  for (Isa isa : simd_isas()) {
    std::vector<float> out(f.out_size(), 1.0f), lse(12, 0.0f);
    SparseAttentionArgs a = f.args(out.data(), true);
    a.lse = lse.data();
    attention_sparse(a, isa);
    for (int i = 0; i < 3 * 64; ++i) EXPECT_EQ(out[static_cast<size_t>(2 * 3 * 64 + i)], 0.0f);
    for (int h = 0; h < 3; ++h) EXPECT_EQ(lse[static_cast<size_t>(2 * 3 + h)], -std::numeric_limits<float>::infinity());
  }
}

// The fixture's attention (head_dim 64) run in parts over entries [cuts[p], cuts[p + 1]), merged
// by their log-sum-exps: `rows` (token, head) rows.
std::vector<float> merged_parts(SparseFixture& f, bool masked, const std::vector<int32_t>& cuts, int rows, Isa isa) {
  const int parts = static_cast<int>(cuts.size()) - 1;
  std::vector<std::vector<float>> outs(parts, std::vector<float>(f.out_size())), lses(parts, std::vector<float>(rows));
  std::vector<const float*> op, lp;
  for (int p = 0; p < parts; ++p) {
    SparseAttentionArgs a = f.args(outs[static_cast<size_t>(p)].data(), masked);
    a.entry_begin = cuts[static_cast<size_t>(p)];
    a.entry_end = cuts[static_cast<size_t>(p) + 1];
    a.lse = lses[static_cast<size_t>(p)].data();
    attention_sparse(a, isa);
    op.push_back(outs[static_cast<size_t>(p)].data());
    lp.push_back(lses[static_cast<size_t>(p)].data());
  }
  std::vector<float> merged(f.out_size());
  merge_partials(parts, op.data(), lp.data(), rows, 64, 64, merged.data(), 64);
  return merged;
}

TEST(AttentionSparse, SplitKPartsMergeToTheWhole) {
  SparseFixture f(64, 3, 1, 2048, 9000, 1.0, 11);
  for (Isa isa : simd_isas()) {
    std::vector<float> whole(f.out_size());
    attention_sparse(f.args(whole.data(), false), isa);
    // Multiples of 16; the last part is shorter.
    expect_close(merged_parts(f, false, {0, 688, 1376, 2064}, 3, isa), whole, 2e-5f, isa_name(isa));
  }
}

// Entry ranges that start and end off the 16-entry tiles (the kernel once read a tile's
// mask bits from one 32-bit word, losing those past it when the range began past bit 16):
// masked and rotated, against the scalar reference over the same range, and parts that
// split the list at awkward offsets merge to the whole.
TEST(AttentionSparse, UnalignedEntryRangesMatchReference) {
  SparseFixture f(64, 3, 16, 1000, 4000, 0.4, 23);
  const std::pair<int32_t, int32_t> ranges[] = {{1, 1000}, {7, 70}, {17, 33}, {31, 32}, {33, 999}, {250, 251}, {999, 1000}};
  for (auto [b, e] : ranges) {
    SparseAttentionArgs a = f.args(nullptr, true);
    f.rotate(a, false);
    a.entry_begin = b;
    a.entry_end = e;
    expect_simd_matches_scalar(a, f.out_size(), static_cast<size_t>(16) * 3,
                               "range " + std::to_string(b) + ".." + std::to_string(e), /*rerun=*/false);
  }
  for (Isa isa : simd_isas()) {
    std::vector<float> whole(f.out_size());
    attention_sparse(f.args(whole.data(), true), isa);
    expect_close(merged_parts(f, true, {0, 5, 250, 271, 1000}, 16 * 3, isa), whole, 2e-5f, std::string("unaligned parts ") + isa_name(isa));
  }
}

// One token over its own list: the same numbers as the blocked-cache kernel (dense layout,
// positions gathered), within float reassociation.
TEST(AttentionSparse, AgreesWithTheBlockedCacheKernel) {
  SparseFixture f(64, 3, 1, 777, 3000, 1.0, 5);
  const int blocks = (f.n_ctx + kKeyBlock - 1) / kKeyBlock;
  std::vector<uint16_t> kb(static_cast<size_t>(blocks) * kKeyBlock * 64);
  for (int p = 0; p < f.n_ctx; ++p)
    for (int d = 0; d < 64; ++d) kb[static_cast<size_t>(k_offset(p, d, 64))] = f.k[static_cast<size_t>(p) * 64 + d];
  std::vector<float> want(f.out_size()), got(f.out_size());
  AttentionArgs b;
  const int32_t nk[3] = {777, 777, 777};
  b.head_dim = 64;
  b.n_rows = 3;
  b.q = f.q.data();
  b.q_stride = 64;
  b.n_keys = nk;
  b.positions = f.positions.data();
  b.k = kb.data();
  b.v = f.v.data();
  b.v_stride = 64;
  b.scale = 0.125f;
  b.out = want.data();
  b.out_stride = 64;
  attention(b, Isa::kScalar);
  attention_sparse(f.args(got.data(), false));
  expect_close(got, want, 3e-5f, "blocked vs row-major");
}

}  // namespace
}  // namespace docdsa::kernels
