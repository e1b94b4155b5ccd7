// Attention kernels: SIMD against the scalar reference, split-K merging, and gathering the
// keys by position list (the sparse path) against the dense path.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/ops.h"

namespace docdsa::kernels {
namespace {

struct Fixture {
  int hd, n_ctx, n_rows;
  std::vector<float> q;
  std::vector<uint16_t> k, v;
  std::vector<int32_t> n_keys;
  Fixture(int hd_, int n_ctx_, int n_rows_, uint32_t seed) : hd(hd_), n_ctx(n_ctx_), n_rows(n_rows_) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    q.resize(static_cast<size_t>(n_rows) * hd);
    for (auto& x : q) x = nd(rng);
    const int blocks = (n_ctx + kKeyBlock - 1) / kKeyBlock;
    k.assign(static_cast<size_t>(blocks) * kKeyBlock * hd, 0);
    v.resize(static_cast<size_t>(n_ctx) * hd);
    for (int p = 0; p < n_ctx; ++p)
      for (int d = 0; d < hd; ++d) {
        k[static_cast<size_t>(k_offset(p, d, hd))] = fp32_to_fp16(nd(rng));
        v[static_cast<size_t>(p) * hd + d] = fp32_to_fp16(nd(rng));
      }
    for (int i = 0; i < n_rows; ++i) n_keys.push_back(std::max(1, n_ctx - (n_rows - 1 - i) * 3));
  }
  AttentionArgs args(float* out) const {
    AttentionArgs a;
    a.head_dim = hd;
    a.n_rows = n_rows;
    a.q = q.data();
    a.q_stride = hd;
    a.n_keys = n_keys.data();
    a.k = k.data();
    a.v = v.data();
    a.v_stride = hd;
    a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    a.out = out;
    a.out_stride = hd;
    return a;
  }
};

std::vector<Isa> simd_isas() {
  std::vector<Isa> v;
  if (detected_isa() >= Isa::kAvx2) v.push_back(Isa::kAvx2);
  if (detected_isa() >= Isa::kAvx512) v.push_back(Isa::kAvx512);
  return v;
}

TEST(Attention, SimdMatchesReference) {
  for (int hd : {16, 64, 128}) {
    for (int n_ctx : {1, 7, 63, 64, 65, 2049}) {
      Fixture f(hd, n_ctx, 5, static_cast<uint32_t>(hd * 7 + n_ctx));
      std::vector<float> ref(static_cast<size_t>(f.n_rows) * hd);
      attention(f.args(ref.data()), Isa::kScalar);
      for (Isa isa : simd_isas()) {
        std::vector<float> got(ref.size());
        attention(f.args(got.data()), isa);
        for (size_t i = 0; i < ref.size(); ++i)
          ASSERT_NEAR(got[i], ref[i], 2e-5f) << "hd=" << hd << " n_ctx=" << n_ctx << " isa=" << isa_name(isa);
        std::vector<float> again(ref.size());
        attention(f.args(again.data()), isa);
        EXPECT_EQ(got, again) << "not bit-identical on re-run";
      }
    }
  }
}

TEST(Attention, SplitKMergeEqualsWhole) {
  Fixture f(64, 1000, 3, 5);
  std::vector<float> whole(static_cast<size_t>(f.n_rows) * 64);
  attention(f.args(whole.data()));
  const int parts = 4, len = 256;
  std::vector<std::vector<float>> outs(parts, std::vector<float>(whole.size())), lses(parts, std::vector<float>(3));
  std::vector<const float*> op, lp;
  for (int p = 0; p < parts; ++p) {
    AttentionArgs a = f.args(outs[static_cast<size_t>(p)].data());
    a.key_begin = p * len;
    a.key_end = (p + 1) * len;
    a.lse = lses[static_cast<size_t>(p)].data();
    attention(a);
    op.push_back(outs[static_cast<size_t>(p)].data());
    lp.push_back(lses[static_cast<size_t>(p)].data());
  }
  std::vector<float> merged(whole.size());
  merge_partials(parts, op.data(), lp.data(), f.n_rows, 64, 64, merged.data(), 64);
  for (size_t i = 0; i < whole.size(); ++i) EXPECT_NEAR(merged[i], whole[i], 1e-5f);
}

TEST(Attention, GatherAllPositionsEqualsDense) {
  Fixture f(64, 300, 4, 9);
  std::vector<int32_t> pos(300);
  std::iota(pos.begin(), pos.end(), 0);
  for (Isa isa : {Isa::kScalar, active_isa()}) {
    std::vector<float> dense(static_cast<size_t>(f.n_rows) * 64), sparse(dense.size());
    attention(f.args(dense.data()), isa);
    AttentionArgs a = f.args(sparse.data());
    a.positions = pos.data();
    attention(a, isa);
    for (size_t i = 0; i < dense.size(); ++i) EXPECT_NEAR(sparse[i], dense[i], 1e-6f);
  }
}

// A masked row over a gathered list equals the same row over just its own keys: masking
// inside a gathered union (sparse prefill) must be exact, not approximately zero weights.
TEST(Attention, MaskedUnionEqualsOwnSelection) {
  Fixture f(64, 400, 3, 21);
  std::mt19937 rng(3);
  // The union: every other position plus a tail run; row i keeps a random subset of it.
  std::vector<int32_t> uni;
  for (int p = 0; p < 400; ++p)
    if (p % 2 == 0 || p > 350) uni.push_back(p);
  const int words = static_cast<int>((uni.size() + 31) / 32);
  std::vector<uint32_t> mask(static_cast<size_t>(f.n_rows) * words, 0);
  std::vector<std::vector<int32_t>> own(static_cast<size_t>(f.n_rows));
  std::vector<int32_t> nk(static_cast<size_t>(f.n_rows), static_cast<int32_t>(uni.size()));
  for (int i = 0; i < f.n_rows; ++i)
    for (size_t j = 0; j < uni.size(); ++j)
      if (rng() % 3 != 0 || j < 16) {  // rows also skip whole blocks sometimes
        if (j >= 64 && j < 96 && i == 1) continue;
        mask[static_cast<size_t>(i) * words + j / 32] |= 1u << (j % 32);
        own[static_cast<size_t>(i)].push_back(uni[j]);
      }
  for (Isa isa : {Isa::kScalar, active_isa()}) {
    std::vector<float> got(static_cast<size_t>(f.n_rows) * 64);
    AttentionArgs a = f.args(got.data());
    a.positions = uni.data();
    a.n_keys = nk.data();
    a.mask = mask.data();
    a.mask_stride = words;
    attention(a, isa);
    for (int i = 0; i < f.n_rows; ++i) {
      std::vector<float> want(64);
      AttentionArgs b = f.args(want.data());
      b.n_rows = 1;
      b.q = f.q.data() + i * 64;
      const int32_t n = static_cast<int32_t>(own[static_cast<size_t>(i)].size());
      b.n_keys = &n;
      b.positions = own[static_cast<size_t>(i)].data();
      attention(b, Isa::kScalar);
      for (int d = 0; d < 64; ++d) EXPECT_NEAR(got[static_cast<size_t>(i) * 64 + d], want[static_cast<size_t>(d)], 2e-5f) << isa_name(isa);
    }
  }
}

// Context extension: a gathered key rotated forward by `shift` positions must equal the same
// key cached at position + shift, for both RoPE pair layouts.
TEST(Attention, KeyShiftEqualsKeysCachedAtShiftedPositions) {
  const int hd = 64, n = 200, pairs = hd / 2;
  RopeParams rp;
  rp.n_rot = hd;
  rp.theta_scale = std::pow(10000.0f, -2.0f / hd);
  for (bool neox : {false, true}) {
    rp.neox = neox;
    std::mt19937 rng(neox ? 2 : 1);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> q(static_cast<size_t>(hd));
    for (auto& x : q) x = nd(rng);
    std::vector<int32_t> pos, shift;
    for (int p = 0; p < n; p += 3) {
      pos.push_back(p);
      shift.push_back(p % 2 ? 0 : 7 + p);
    }
    const int64_t blocks = (2 * n + kKeyBlock) / kKeyBlock;
    std::vector<uint16_t> k1(static_cast<size_t>(blocks) * kKeyBlock * hd), k2(k1.size());
    std::vector<uint16_t> v(static_cast<size_t>(2 * n + kKeyBlock) * hd);
    for (auto& x : v) x = fp32_to_fp16(nd(rng));
    std::vector<float> rc(static_cast<size_t>(3 * n) * pairs), rs(rc.size());  // positions + shifts < 3n
    for (int s = 0; s < 3 * n; ++s) rope_cache(rp, s, rc.data() + s * pairs, rs.data() + s * pairs);
    std::vector<int32_t> pos2;
    for (size_t j = 0; j < pos.size(); ++j) {
      std::vector<float> raw(static_cast<size_t>(hd)), a(raw.size()), b(raw.size());
      for (auto& x : raw) x = nd(rng);
      a = raw;
      b = raw;
      rope_apply(a.data(), hd, rc.data() + pos[j] * pairs, rs.data() + pos[j] * pairs, neox);
      rope_apply(b.data(), hd, rc.data() + (pos[j] + shift[j]) * pairs, rs.data() + (pos[j] + shift[j]) * pairs, neox);
      // Cache 2 holds the shifted key (and the same value) at a slot of its own.
      const int slot = static_cast<int>(j);
      for (int d = 0; d < hd; ++d) {
        k1[static_cast<size_t>(k_offset(pos[j], d, hd))] = fp32_to_fp16(a[static_cast<size_t>(d)]);
        k2[static_cast<size_t>(k_offset(slot, d, hd))] = fp32_to_fp16(b[static_cast<size_t>(d)]);
      }
      pos2.push_back(slot);
    }
    std::vector<uint16_t> v2(v.size());
    for (size_t j = 0; j < pos.size(); ++j)
      std::copy_n(v.begin() + pos[j] * hd, hd, v2.begin() + static_cast<int64_t>(j) * hd);
    const int32_t nk = static_cast<int32_t>(pos.size());
    for (Isa isa : {Isa::kScalar, active_isa()}) {
      std::vector<float> got(static_cast<size_t>(hd)), want(static_cast<size_t>(hd));
      AttentionArgs a;
      a.head_dim = hd;
      a.n_rows = 1;
      a.q = q.data();
      a.q_stride = hd;
      a.n_keys = &nk;
      a.positions = pos.data();
      a.k = k1.data();
      a.v = v.data();
      a.v_stride = hd;
      a.scale = 0.125f;
      a.out = got.data();
      a.out_stride = hd;
      a.key_shift = shift.data();
      a.rot_cos = rc.data();
      a.rot_sin = rs.data();
      a.rot_pairs = pairs;
      a.rot_neox = neox;
      attention(a, isa);
      AttentionArgs b = a;
      b.positions = pos2.data();
      b.k = k2.data();
      b.v = v2.data();
      b.key_shift = nullptr;
      b.out = want.data();
      attention(b, Isa::kScalar);
      for (int d = 0; d < hd; ++d) EXPECT_NEAR(got[static_cast<size_t>(d)], want[static_cast<size_t>(d)], 5e-3f) << isa_name(isa) << " neox " << neox;
    }
  }
}

}  // namespace
}  // namespace docdsa::kernels
