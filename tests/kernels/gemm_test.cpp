// Packed GEMM (gemm.h): every packed type, on the scalar reference over the packed layout and
// on the AVX-512 VNNI kernels, against vec_dot of the original rows: bit-exact (K-quants with
// the scalar reference; Q4_0/Q4_1/Q8_0 in llama.cpp's order with the AVX-512 vec_dot, in the
// block order with the packed scalar reference and within float rounding of vec_dot), at
// awkward sizes (partial row groups, odd token counts, one or three blocks, row ranges that
// split groups, strides wider than the rows).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/gemm.h"

namespace docdsa::kernels {
namespace {

const DType kPacked[] = {DType::Q4_0, DType::Q4_1, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::vector<Isa> gemm_isas() {
  std::vector<Isa> v{Isa::kScalar};
  if (detected_isa() >= Isa::kAvx512) v.push_back(Isa::kAvx512);
  return v;
}

// Offsets of the fp16 scale fields in a block (random bytes there could be NaN or Inf).
std::vector<size_t> half_fields(DType t) {
  switch (t) {
    case DType::Q4_1:
    case DType::Q4_K:
    case DType::Q5_K:
      return {0, 2};
    case DType::Q6_K:
      return {208};
    default:
      return {0};
  }
}

// Rows of random bytes (every bit pattern of quants and sub-block scales) with sane scales,
// or, with `from_floats`, real quantisations of random values.
std::vector<uint8_t> make_weights(DType t, int64_t n_out, int64_t n_in, size_t stride, uint32_t seed, bool from_floats) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> w(stride * static_cast<size_t>(n_out));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  if (from_floats) {
    std::vector<float> x(static_cast<size_t>(n_in));
    for (int64_t r = 0; r < n_out; ++r) {
      for (auto& v : x) v = nd(rng);
      quantize_row(t, x.data(), w.data() + static_cast<size_t>(r) * stride, n_in);
    }
    return w;
  }
  for (auto& b : w) b = static_cast<uint8_t>(rng());
  const size_t bb = info(t).block_bytes;
  std::uniform_real_distribution<float> ud(-0.05f, 0.05f);
  for (int64_t r = 0; r < n_out; ++r)
    for (int64_t b = 0; b < n_in / info(t).block_size; ++b)
      for (size_t off : half_fields(t)) {
        const uint16_t h = fp32_to_fp16(ud(rng));
        std::memcpy(w.data() + static_cast<size_t>(r) * stride + static_cast<size_t>(b) * bb + off, &h, 2);
      }
  return w;
}

std::vector<uint8_t> make_acts(DType t, int n_tok, int64_t n_in, size_t stride, uint32_t seed, float fill = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(n_tok * n_in));
  for (auto& v : x) v = fill != 0.0f ? fill : nd(rng);
  std::vector<uint8_t> a(stride * static_cast<size_t>(n_tok), 0xAB);
  quantize_activations(t, x.data(), n_in, n_tok, n_in, a.data(), stride);
  return a;
}

// K-quants are bit-exact with the scalar vec_dot. Q4_0/Q4_1/Q8_0 in llama.cpp's lane order
// (gemm_llama_order()) are bit-exact with the AVX-512 vec_dot, which implements it (and the
// oracle fixtures were made with); in the block order (default) with the packed scalar
// reference, and near vec_dot.
bool is_legacy(DType t) {
  return t == DType::Q4_0 || t == DType::Q4_1 || t == DType::Q8_0;
}
Isa oracle_isa(DType t) {
  return is_legacy(t) ? Isa::kAvx512 : Isa::kScalar;
}
bool bit_exact_oracle(DType t) {
  return !is_legacy(t) || detected_isa() >= Isa::kAvx512;
}

// Chooses the legacy types' float order for one scope, and back to the default.
struct LlamaOrder {
  explicit LlamaOrder(bool on) { set_gemm_llama_order(on); }
  ~LlamaOrder() { set_gemm_llama_order(false); }
};
// The orders a type has: both for Q4_0/Q4_1/Q8_0, one for the rest.
std::vector<bool> orders(DType t) {
  return is_legacy(t) ? std::vector<bool>{false, true} : std::vector<bool>{false};
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// gemm over [r0, r1) equals its oracle bit for bit (see above) in the order gemm_llama_order()
// sets; outside the range nothing is written.
void check(DType t, const std::vector<uint8_t>& w, size_t w_stride, int64_t n_out, int64_t n_in, const std::vector<uint8_t>& a,
           size_t a_stride, int n_tok, int64_t r0, int64_t r1, Isa isa) {
  const PackedWeight pw = pack_weight(t, w.data(), n_out, n_in, w_stride, /*force=*/true);
  ASSERT_TRUE(pw.packed()) << info(t).name;
  const int64_t ldo = n_out + 3;
  const float sentinel = -12345.5f;
  std::vector<float> out(static_cast<size_t>(ldo * n_tok), sentinel), block_ref;
  gemm(pw, a.data(), a_stride, n_tok, out.data(), ldo, r0, r1, isa);
  const bool block_order = is_legacy(t) && !gemm_llama_order();
  // The scalar path is the block order's reference itself: only its nearness to vec_dot is checked.
  const bool own_ref = block_order && isa == Isa::kScalar;
  if (block_order && !own_ref) {
    block_ref.assign(out.size(), sentinel);
    gemm(pw, a.data(), a_stride, n_tok, block_ref.data(), ldo, r0, r1, Isa::kScalar);
  }
  for (int tok = 0; tok < n_tok; ++tok)
    for (int64_t r = 0; r < ldo; ++r) {
      const float got = out[static_cast<size_t>(tok * ldo + r)];
      if (r < r0 || r >= r1) {
        ASSERT_EQ(bits(got), bits(sentinel)) << "wrote outside the range at row " << r;
        continue;
      }
      const uint8_t* wr = w.data() + static_cast<size_t>(r) * w_stride;
      const uint8_t* ar = a.data() + static_cast<size_t>(tok) * a_stride;
      if (block_order || !bit_exact_oracle(t)) {  // another order than vec_dot's: near it
        const float ref = vec_dot(t, n_in, wr, ar, Isa::kScalar);
        ASSERT_NEAR(got, ref, 1e-4f * (1.0f + std::fabs(ref))) << info(t).name << " row " << r << " tok " << tok;
        if (!block_order || own_ref) continue;
      }
      const float want = block_order ? block_ref[static_cast<size_t>(tok * ldo + r)] : vec_dot(t, n_in, wr, ar, oracle_isa(t));
      ASSERT_EQ(bits(got), bits(want)) << info(t).name << (block_order ? " block order" : "") << " isa " << isa_name(isa)
                                       << " n_out " << n_out << " n_in " << n_in << " n_tok " << n_tok << " row " << r << " tok "
                                       << tok << ": " << got << " vs " << want;
    }
}

TEST(Gemm, PackedMatchesVecDotBitExact) {
  uint32_t seed = 1;
  for (DType t : kPacked) {
    const int bs = info(t).block_size;
    for (int nblk : {1, 3}) {
      const int64_t n_in = int64_t{bs} * nblk;
      for (int64_t n_out : {1, 15, 17, 45}) {
        for (bool from_floats : {false, true}) {
          const size_t w_stride = row_bytes(t, n_in) + 7;  // rows need not be adjacent
          const auto w = make_weights(t, n_out, n_in, w_stride, seed++, from_floats);
          for (int n_tok : {1, 2, 3, 5, 8, 9, 13}) {
            const size_t a_stride = activation_row_bytes(t, n_in) + 5;
            const auto a = make_acts(t, n_tok, n_in, a_stride, seed++);
            for (bool llama : orders(t)) {
              const LlamaOrder order(llama);
              for (Isa isa : gemm_isas()) {
                check(t, w, w_stride, n_out, n_in, a, a_stride, n_tok, 0, n_out, isa);
                if (n_out > 5) check(t, w, w_stride, n_out, n_in, a, a_stride, n_tok, 3, n_out - 2, isa);
                if (HasFatalFailure()) return;
              }
            }
          }
        }
      }
    }
  }
}

// Chooses BF16's kernel for one scope (VDPBF16PS where the CPU has it, or the FMA kernel).
struct Bf16DotSwitch {
  explicit Bf16DotSwitch(bool on) { set_gemm_bf16_dot(on); }
  ~Bf16DotSwitch() { set_gemm_bf16_dot(true); }
};

// F16/BF16: the packed kernels (and BF16's FMA kernel where the CPU has VDPBF16PS too) equal
// the scalar reference on the packed layout bit for bit, whatever the batch size, row range or
// tile; both stay within float rounding of vec_dot on the file's rows. Nothing is written
// outside [r0, r1).
TEST(Gemm, HalfPackedMatchesReference) {
  uint32_t seed = 100;
  for (DType t : {DType::F16, DType::BF16}) {
    for (int64_t n_in : {32, 96, 576}) {
      for (int64_t n_out : {1, 15, 17, 45, 63, 64, 65, 150}) {
        const size_t w_stride = row_bytes(t, n_in) + 6;
        const auto w = make_weights(t, n_out, n_in, w_stride, seed++, /*from_floats=*/true);
        const PackedWeight pw = pack_weight(t, w.data(), n_out, n_in, w_stride, /*force=*/true);
        ASSERT_TRUE(pw.packed()) << info(t).name;
        for (int n_tok : {1, 2, 3, 8, 9, 13, 17}) {
          const size_t a_stride = activation_row_bytes(t, n_in) + 4;
          const auto a = make_acts(t, n_tok, n_in, a_stride, seed++);
          const int64_t ldo = n_out + 3;
          const float sentinel = -12345.5f;
          std::vector<float> ref(static_cast<size_t>(ldo * n_tok), sentinel);
          gemm(pw, a.data(), a_stride, n_tok, ref.data(), ldo, 0, n_out, Isa::kScalar);
          for (int tok = 0; tok < n_tok; ++tok)
            for (int64_t r = 0; r < n_out; ++r) {
              const float dot = vec_dot(t, n_in, w.data() + static_cast<size_t>(r) * w_stride,
                                        a.data() + static_cast<size_t>(tok) * a_stride, Isa::kScalar);
              ASSERT_NEAR(ref[static_cast<size_t>(tok * ldo + r)], dot, 1e-4f * (1.0f + std::fabs(dot))) << info(t).name;
            }
          if (detected_isa() < Isa::kAvx512) continue;
          for (bool dot_instr : {true, false}) {
            if (dot_instr && t == DType::BF16 && !gemm_bf16_dot_supported()) continue;
            const Bf16DotSwitch guard(dot_instr);
            // Whole groups and cut ones, up to 8 groups per one-token tile and its tails.
            for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, n_out}, {n_out / 3, n_out - n_out / 4}, {5, n_out - 4}}) {
              if (r1 <= r0) continue;
              std::vector<float> got(ref.size(), sentinel);
              gemm(pw, a.data(), a_stride, n_tok, got.data(), ldo, r0, r1, Isa::kAvx512);
              for (int tok = 0; tok < n_tok; ++tok)
                for (int64_t r = 0; r < ldo; ++r) {
                  const size_t i = static_cast<size_t>(tok * ldo + r);
                  const float want = r >= r0 && r < r1 ? ref[i] : sentinel;
                  ASSERT_EQ(bits(got[i]), bits(want)) << info(t).name << (dot_instr ? " VDPBF16PS" : " FMA") << " n_in " << n_in
                                                      << " n_out " << n_out << " n_tok " << n_tok << " rows [" << r0 << ", " << r1
                                                      << ") row " << r << " tok " << tok << ": " << got[i] << " vs " << want;
                }
            }
          }
        }
      }
    }
  }
}

// Largest quants and activations everywhere: the int32 sums reach their extremes.
TEST(Gemm, ExtremeValuesStayExact) {
  for (DType t : kPacked) {
    const int64_t n_in = 3 * int64_t{info(t).block_size}, n_out = 20;
    const size_t w_stride = row_bytes(t, n_in);
    auto w = make_weights(t, n_out, n_in, w_stride, 7, false);
    const size_t bb = info(t).block_bytes;
    for (int64_t r = 0; r < n_out; ++r)
      for (int64_t b = 0; b < n_in / info(t).block_size; ++b) {
        uint8_t* blk = w.data() + static_cast<size_t>(r) * w_stride + static_cast<size_t>(b) * bb;
        const auto f = half_fields(t);
        for (size_t i = 0; i < bb; ++i)
          if (std::find(f.begin(), f.end(), i) == f.end() && std::find(f.begin(), f.end(), i - 1) == f.end())
            blk[i] = r % 2 ? 0xFF : 0x80;  // all-ones nibbles/scales, or Q8_0's -128
      }
    for (float fill : {1.0f, -1.0f}) {
      const size_t a_stride = activation_row_bytes(t, n_in);
      const auto a = make_acts(t, 9, n_in, a_stride, 3, fill);
      for (bool llama : orders(t)) {
        const LlamaOrder order(llama);
        for (Isa isa : gemm_isas()) check(t, w, w_stride, n_out, n_in, a, a_stride, 9, 0, n_out, isa);
      }
    }
  }
}

// Splitting rows across threads at any boundary gives the same outputs as one call.
TEST(Gemm, RowSplitsAgree) {
  const DType t = DType::Q4_K;
  const int64_t n_in = 512, n_out = 70;
  const auto w = make_weights(t, n_out, n_in, row_bytes(t, n_in), 11, true);
  const size_t a_stride = activation_row_bytes(t, n_in);
  const auto a = make_acts(t, 10, n_in, a_stride, 12);
  const PackedWeight pw = pack_weight(t, w.data(), n_out, n_in, row_bytes(t, n_in), true);
  std::vector<float> whole(static_cast<size_t>(10 * n_out)), split(whole.size());
  gemm(pw, a.data(), a_stride, 10, whole.data(), n_out, 0, n_out);
  for (int64_t cut : {1, 16, 23, 69}) {
    gemm(pw, a.data(), a_stride, 10, split.data(), n_out, 0, cut);
    gemm(pw, a.data(), a_stride, 10, split.data(), n_out, cut, n_out);
    for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(bits(whole[i]), bits(split[i])) << "cut " << cut;
  }
}

// Decode (one or two tokens) streams a row range group after group, prefetching ahead of its
// reads up to the end of the weight (gemm_vnni.cpp): weights of many groups, so that the
// prefetch runs, stops short of the end and leaves the last groups to a single burst; row
// ranges cut as the CPU backend cuts them (16-row chunks), at odd rows, and a ragged last group.
// Bit-exact with their oracles (check()), in both orders of Q4_0/Q4_1/Q8_0.
TEST(Gemm, DecodeStreamMatchesVecDotAtAwkwardSizes) {
  uint32_t seed = 100;
  for (DType t : kPacked) {
    // Legacy records are small (288-544 bytes): at 49 blocks one group passes the prefetch
    // distance, as the K-quants' do at 7.
    const std::vector<int> nblks = is_legacy(t) ? std::vector<int>{1, 7, 49} : std::vector<int>{1, 7};
    for (int nblk : nblks) {
      const int64_t n_in = int64_t{info(t).block_size} * nblk;
      for (int64_t n_out : {1, 63, 64, 65, 2049}) {
        const size_t w_stride = row_bytes(t, n_in);
        const auto w = make_weights(t, n_out, n_in, w_stride, seed++, /*from_floats=*/nblk == 7);
        for (int n_tok : {1, 2}) {
          const size_t a_stride = activation_row_bytes(t, n_in);
          const auto a = make_acts(t, n_tok, n_in, a_stride, seed++);
          for (bool llama : orders(t)) {
            const LlamaOrder order(llama);
            for (Isa isa : gemm_isas()) {
              check(t, w, w_stride, n_out, n_in, a, a_stride, n_tok, 0, n_out, isa);
              if (n_out > 40) check(t, w, w_stride, n_out, n_in, a, a_stride, n_tok, 17, n_out - 5, isa);
              const int64_t chunk = std::max<int64_t>(16, (n_out / 16 + 15) / 16 * 16);
              for (int64_t r0 = 0; n_out > 64 && r0 < n_out; r0 += chunk)
                check(t, w, w_stride, n_out, n_in, a, a_stride, n_tok, r0, std::min(n_out, r0 + chunk), isa);
              if (HasFatalFailure()) return;
            }
          }
        }
      }
    }
  }
}

// The packed form is about the file's size: decode streams it, so bytes are time.
TEST(Gemm, PackedSizeNearFileSize) {
  for (DType t : kPacked) {
    const int64_t n_in = 4 * int64_t{info(t).block_size}, n_out = 64;
    const auto w = make_weights(t, n_out, n_in, row_bytes(t, n_in), 5, true);
    const PackedWeight pw = pack_weight(t, w.data(), n_out, n_in, row_bytes(t, n_in), true);
    const double ratio = static_cast<double>(pw.packed_bytes()) / static_cast<double>(w.size());
    EXPECT_LE(ratio, 1.03) << info(t).name;
  }
}

// Switches the AMX path for one test and back.
struct AmxOn {
  explicit AmxOn(bool on) : saved(gemm_amx_active()) { set_gemm_amx(on); }
  ~AmxOn() { set_gemm_amx(saved); }
  bool saved;
};

// The AMX path: batches of >= 16 tokens run tile products on whole 16-token tiles, the rest on
// the VNNI kernels; every token equals check()'s oracle bit for bit (K-quants the scalar
// vec_dot, Q4_0/Q4_1/Q8_0 the block-order reference), whichever kernel ran it.
TEST(Gemm, AmxMatchesReferenceAtAwkwardSizes) {
  if (!gemm_amx_supported()) GTEST_SKIP() << "no AMX-INT8 here (or the kernel refused the tile state): VNNI only";
  AmxOn amx(true);
  uint32_t seed = 100;
  for (DType t : kPacked) {
    const int bs = info(t).block_size;
    for (int nblk : {1, 3}) {  // K of one block, and a block past an even split
      const int64_t n_in = int64_t{bs} * nblk;
      for (int64_t n_out : {16, 17, 45}) {  // one tile of rows, a lone row past it, a ragged last group
        for (bool from_floats : {false, true}) {
          const size_t w_stride = row_bytes(t, n_in) + 7;
          const auto w = make_weights(t, n_out, n_in, w_stride, seed++, from_floats);
          for (int n_tok : {16, 37, 64}) {  // exact tiles, and a 5-token tail on VNNI
            const size_t a_stride = activation_row_bytes(t, n_in) + 5;
            const auto a = make_acts(t, n_tok, n_in, a_stride, seed++);
            check(t, w, w_stride, n_out, n_in, a, a_stride, n_tok, 0, n_out, Isa::kAvx512);
            check(t, w, w_stride, n_out, n_in, a, a_stride, n_tok, 3, n_out - 2, Isa::kAvx512);
            if (HasFatalFailure()) return;
          }
        }
      }
    }
  }
}

TEST(Gemm, AmxExtremeValuesStayExact) {
  if (!gemm_amx_supported()) GTEST_SKIP() << "no AMX-INT8 here (or the kernel refused the tile state): VNNI only";
  AmxOn amx(true);
  for (DType t : kPacked) {
    const int64_t n_in = 3 * int64_t{info(t).block_size}, n_out = 20;
    const size_t w_stride = row_bytes(t, n_in);
    auto w = make_weights(t, n_out, n_in, w_stride, 7, false);
    const size_t bb = info(t).block_bytes;
    for (int64_t r = 0; r < n_out; ++r)
      for (int64_t b = 0; b < n_in / info(t).block_size; ++b) {
        uint8_t* blk = w.data() + static_cast<size_t>(r) * w_stride + static_cast<size_t>(b) * bb;
        const auto f = half_fields(t);
        for (size_t i = 0; i < bb; ++i)
          if (std::find(f.begin(), f.end(), i) == f.end() && std::find(f.begin(), f.end(), i - 1) == f.end())
            blk[i] = r % 2 ? 0xFF : 0x80;
      }
    for (float fill : {1.0f, -1.0f}) {
      const size_t a_stride = activation_row_bytes(t, n_in);
      const auto a = make_acts(t, 33, n_in, a_stride, 3, fill);
      check(t, w, w_stride, n_out, n_in, a, a_stride, 33, 0, n_out, Isa::kAvx512);
    }
  }
}

// DOCDSA_NO_AMX's switch: off, a 37-token batch runs the VNNI kernels, in either order.
TEST(Gemm, AmxSwitchOffRunsVnni) {
  if (detected_isa() < Isa::kAvx512) GTEST_SKIP() << "no AVX-512 here";
  AmxOn amx(false);
  EXPECT_FALSE(gemm_amx_active());
  for (DType t : kPacked) {
    const int64_t n_in = 2 * int64_t{info(t).block_size}, n_out = 33;
    const auto w = make_weights(t, n_out, n_in, row_bytes(t, n_in), 21, true);
    const size_t a_stride = activation_row_bytes(t, n_in);
    const auto a = make_acts(t, 37, n_in, a_stride, 22);
    for (bool llama : orders(t)) {
      const LlamaOrder order(llama);
      check(t, w, row_bytes(t, n_in), n_out, n_in, a, a_stride, 37, 0, n_out, Isa::kAvx512);
    }
  }
}

// With llama.cpp's order Q4_0/Q4_1/Q8_0 stay on VNNI in batches too (a tile cannot give it),
// bit-exact with llama.cpp's vec_dot; by default every packed type runs tiles.
TEST(Gemm, AmxLeavesLlamaOrderToVnni) {
  if (!gemm_amx_supported()) GTEST_SKIP() << "no AMX-INT8 here (or the kernel refused the tile state): VNNI only";
  AmxOn amx(true);
  for (DType t : kPacked) {
    EXPECT_TRUE(gemm_amx_applies(t)) << info(t).name;
    const LlamaOrder order(true);
    EXPECT_EQ(gemm_amx_applies(t), !is_legacy(t)) << info(t).name;
    const int64_t n_in = 2 * int64_t{info(t).block_size}, n_out = 33;
    const auto w = make_weights(t, n_out, n_in, row_bytes(t, n_in), 41, true);
    const size_t a_stride = activation_row_bytes(t, n_in);
    const auto a = make_acts(t, 37, n_in, a_stride, 42);
    check(t, w, row_bytes(t, n_in), n_out, n_in, a, a_stride, 37, 0, n_out, Isa::kAvx512);
  }
}

// Block sums built once by the caller (shared by the matrices reading one activation) give the
// same results as the kernels' own, and are what the kernels read.
TEST(Gemm, PrebuiltAuxIsUsed) {
  if (detected_isa() < Isa::kAvx512) GTEST_SKIP() << "no AVX-512 here";
  for (bool amx : {false, true}) {
    if (amx && !gemm_amx_supported()) continue;
    AmxOn on(amx);
    for (DType t : kPacked) {
      const int64_t n_in = 2 * int64_t{info(t).block_size}, n_out = 40;
      const int n_tok = 21;
      const auto w = make_weights(t, n_out, n_in, row_bytes(t, n_in), 31, true);
      const PackedWeight pw = pack_weight(t, w.data(), n_out, n_in, row_bytes(t, n_in), true);
      const size_t a_stride = activation_row_bytes(t, n_in);
      const auto a = make_acts(t, n_tok, n_in, a_stride, 32);
      const auto other = make_acts(t, n_tok, n_in, a_stride, 33);
      std::vector<uint8_t> aux(gemm_aux_bytes(t, n_tok, n_in)), aux_other(aux.size());
      gemm_build_aux(t, a.data(), a_stride, n_tok, n_in, aux.data());
      gemm_build_aux(t, other.data(), a_stride, n_tok, n_in, aux_other.data());
      std::vector<float> own(static_cast<size_t>(n_tok * n_out)), shared(own.size()), wrong(own.size());
      gemm(pw, a.data(), a_stride, n_tok, own.data(), n_out, 0, n_out, Isa::kAvx512);
      gemm(pw, a.data(), a_stride, n_tok, shared.data(), n_out, 0, n_out, Isa::kAvx512, aux.data());
      gemm(pw, a.data(), a_stride, n_tok, wrong.data(), n_out, 0, n_out, Isa::kAvx512, aux_other.data());
      for (size_t i = 0; i < own.size(); ++i) ASSERT_EQ(bits(own[i]), bits(shared[i])) << info(t).name << " amx " << amx;
      EXPECT_NE(own, wrong) << info(t).name << ": the kernels ignored the aux they were given";
    }
  }
}

// Types without a packed kernel, and CPUs without VNNI, keep matmul_tile over the original rows.
TEST(Gemm, UnpackedFallsBackToMatmulTile) {
  // F32 has no packed kernel; F16/BF16 rows of a length that is no multiple of 32 stay unpacked.
  for (auto [t, n_in] : {std::pair<DType, int64_t>{DType::F32, 64}, {DType::F16, 40}, {DType::BF16, 40}}) {
    const int64_t n_out = 19;
    const auto w = make_weights(t, n_out, n_in, row_bytes(t, n_in), 9, true);
    const size_t a_stride = activation_row_bytes(t, n_in);
    const auto a = make_acts(t, 3, n_in, a_stride, 10);
    const PackedWeight pw = pack_weight(t, w.data(), n_out, n_in, row_bytes(t, n_in), true);
    EXPECT_FALSE(pw.packed());
    std::vector<float> got(3 * n_out), want(3 * n_out);
    gemm(pw, a.data(), a_stride, 3, got.data(), n_out, 0, n_out);
    MatmulArgs m{t, n_in, w.data(), row_bytes(t, n_in), a.data(), a_stride, 3, want.data(), n_out};
    matmul_tile(m, 0, n_out);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(bits(got[i]), bits(want[i]));
  }
  const Isa saved = active_isa();
  set_active_isa(Isa::kAvx2);
  EXPECT_FALSE(gemm_should_pack(DType::Q4_K));
  const auto w = make_weights(DType::Q4_K, 16, 256, row_bytes(DType::Q4_K, 256), 1, true);
  EXPECT_FALSE(pack_weight(DType::Q4_K, w.data(), 16, 256, row_bytes(DType::Q4_K, 256)).packed());
  set_active_isa(saved);
  EXPECT_EQ(gemm_should_pack(DType::Q4_K), detected_isa() == Isa::kAvx512);
}

}  // namespace
}  // namespace docdsa::kernels
