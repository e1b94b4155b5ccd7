// Every quantised type: dequantisation against a float round trip, and the AVX2 / AVX-512
// dot products and matmul tiles against the scalar reference, over awkward sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/quant.h"
#include "random_fill.h"

namespace docdsa::kernels {
namespace {

std::vector<uint8_t> quantize(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> out(row_bytes(t, static_cast<int64_t>(x.size())));
  quantize_row(t, x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

const DType kWeightTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0,
                              DType::Q4_1, DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::vector<Isa> isas() {
  std::vector<Isa> v{Isa::kScalar};
  if (detected_isa() >= Isa::kAvx2) v.push_back(Isa::kAvx2);
  if (detected_isa() >= Isa::kAvx512) v.push_back(Isa::kAvx512);
  return v;
}

TEST(Fp16, RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(fp32_to_fp16(f), h) << h;
  }
}

TEST(Quant, DequantizeIsCloseToInput) {
  // Relative RMS error bounds per type, from the number of bits kept.
  const std::pair<DType, double> bounds[] = {{DType::F32, 0.0}, {DType::F16, 1e-3}, {DType::BF16, 5e-3},
                                             {DType::Q8_0, 0.01}, {DType::Q4_0, 0.15}, {DType::Q4_1, 0.15},
                                             {DType::Q4_K, 0.15}, {DType::Q5_K, 0.08}, {DType::Q6_K, 0.05}};
  for (auto [t, bound] : bounds) {
    const auto x = test::random_normal(1024, 7);
    const auto q = quantize(t, x);
    std::vector<float> y(x.size());
    dequantize_row(t, q.data(), y.data(), static_cast<int64_t>(x.size()));
    double err = 0, norm = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      err += (x[i] - y[i]) * (x[i] - y[i]);
      norm += x[i] * x[i];
    }
    EXPECT_LE(std::sqrt(err / norm), bound) << info(t).name;
  }
}

// The integer dot of quantised weights and activations equals the float dot of their
// dequantised forms (up to float rounding): checks block layouts and scale handling.
TEST(Quant, ReferenceDotMatchesDequantisedDot) {
  for (DType t : kWeightTypes) {
    const int64_t n = 512;
    const auto w = quantize(t, test::random_normal(n, 11));
    const DType at = info(t).vec_dot_type;
    const auto a = quantize(at, test::random_normal(n, 12));
    std::vector<float> wf(n), af(n);
    dequantize_row(t, w.data(), wf.data(), n);
    dequantize_row(at, a.data(), af.data(), n);
    double want = 0;
    for (int64_t i = 0; i < n; ++i) want += static_cast<double>(wf[i]) * af[i];
    const float got = vec_dot(t, n, w.data(), a.data(), Isa::kScalar);
    EXPECT_NEAR(got, want, 1e-3 * (1.0 + std::fabs(want))) << info(t).name;
  }
}

// SIMD dots against the scalar reference over awkward sizes; tolerance: float reassociation
// of up to n terms, 1e-5 relative to the sum of |terms|.
TEST(Quant, SimdDotMatchesReference) {
  for (DType t : kWeightTypes) {
    const int bs = info(t).block_size == 1 ? 32 : info(t).block_size;
    for (int blocks : {1, 2, 3, 7, 63, 64, 65}) {
      const int64_t n = static_cast<int64_t>(blocks) * bs;
      const auto w = quantize(t, test::random_normal(static_cast<size_t>(n), 100 + blocks));
      const auto a = quantize(info(t).vec_dot_type, test::random_normal(static_cast<size_t>(n), 200 + blocks));
      const float ref = vec_dot(t, n, w.data(), a.data(), Isa::kScalar);
      std::vector<float> wf(static_cast<size_t>(n)), af(static_cast<size_t>(n));
      dequantize_row(t, w.data(), wf.data(), n);
      dequantize_row(info(t).vec_dot_type, a.data(), af.data(), n);
      double mag = 0;
      for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wf[i]) * af[i]);
      for (Isa isa : isas()) {
        const float got = vec_dot(t, n, w.data(), a.data(), isa);
        EXPECT_NEAR(got, ref, 1e-5 * mag + 1e-6) << info(t).name << " n=" << n << " isa=" << isa_name(isa);
        EXPECT_EQ(got, vec_dot(t, n, w.data(), a.data(), isa)) << "not deterministic";
      }
    }
  }
}

TEST(Quant, MatmulTileMatchesVecDot) {
  for (DType t : kWeightTypes) {
    const int bs = info(t).block_size == 1 ? 32 : info(t).block_size;
    const int64_t n_in = 3 * bs;  // odd block count exercises the AVX-512 tail
    for (int n_out : {1, 5, 17}) {
      for (int n_tok : {1, 3, 9}) {
        std::vector<uint8_t> w, a;
        for (int r = 0; r < n_out; ++r) {
          auto q = quantize(t, test::random_normal(static_cast<size_t>(n_in), 300 + r));
          w.insert(w.end(), q.begin(), q.end());
        }
        const DType at = info(t).vec_dot_type;
        for (int k = 0; k < n_tok; ++k) {
          auto q = quantize(at, test::random_normal(static_cast<size_t>(n_in), 400 + k));
          a.insert(a.end(), q.begin(), q.end());
        }
        for (Isa isa : isas()) {
          std::vector<float> out(static_cast<size_t>(n_tok) * n_out, NAN);
          MatmulArgs p{t, n_in, w.data(), row_bytes(t, n_in), a.data(), row_bytes(at, n_in), n_tok, out.data(), n_out};
          matmul_tile(p, 0, n_out, isa);
          for (int k = 0; k < n_tok; ++k)
            for (int r = 0; r < n_out; ++r) {
              const float want = vec_dot(t, n_in, w.data() + r * row_bytes(t, n_in), a.data() + k * row_bytes(at, n_in), Isa::kScalar);
              EXPECT_NEAR(out[static_cast<size_t>(k) * n_out + r], want, 1e-4 * (1 + std::fabs(want)))
                  << info(t).name << " isa=" << isa_name(isa) << " r=" << r << " t=" << k;
            }
        }
      }
    }
  }
}

TEST(Quant, ActivationQuantisersRoundHalfToEven) {
  // 127/amax scaling with round-half-even, like llama.cpp's x86 quantisers: with amax = 127,
  // x = 2.5 scales to exactly 2.5 and must round to 2.
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -3.5f;
  BlockQ8_0 b;
  quantize_row(DType::Q8_0, x.data(), &b, 32);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], -4);
  BlockQ8_1 b1;
  quantize_row(DType::Q8_1, x.data(), &b1, 32);
  EXPECT_FLOAT_EQ(fp16_to_fp32(b1.s), fp16_to_fp32(fp32_to_fp16(1.0f * (127 + 2 - 4))));
}

}  // namespace
}  // namespace docdsa::kernels

namespace docdsa::kernels {
namespace {

// AVX2 and AVX-512 follow the same float order (llama.cpp's), so they agree bit for bit.
TEST(Quant, Avx2AndAvx512AreBitIdentical) {
  if (detected_isa() < Isa::kAvx512) GTEST_SKIP() << "needs AVX-512";
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q8_0}) {
    for (int blocks : {1, 2, 3, 18, 48}) {
      const int64_t n = static_cast<int64_t>(blocks) * 32;
      const auto w = quantize(t, test::random_normal(static_cast<size_t>(n), 500 + blocks));
      const auto a = quantize(info(t).vec_dot_type, test::random_normal(static_cast<size_t>(n), 600 + blocks));
      EXPECT_EQ(vec_dot(t, n, w.data(), a.data(), Isa::kAvx2), vec_dot(t, n, w.data(), a.data(), Isa::kAvx512))
          << info(t).name << " n=" << n;
    }
  }
}

}  // namespace
}  // namespace docdsa::kernels

namespace docdsa::kernels {
namespace {

// Q8_K activations: the AVX-512 quantiser writes the scalar one's bytes, edge values included
// (ties for the largest magnitude, both signs, NaN, infinities, zero blocks, halves).
// The activation quantisers (Q8_K, Q8_0, Q8_1) give the same bytes on every ISA.
TEST(Quant, ActivationQuantisersAreBitIdenticalAcrossIsas) {
  if (detected_isa() < Isa::kAvx512) GTEST_SKIP() << "needs AVX-512";
  const Isa saved = active_isa();
  for (int seed = 0; seed < 40; ++seed) {
    const int64_t n = 256 * (1 + seed % 5);
    std::vector<float> x = test::random_normal(static_cast<size_t>(n), 900 + seed);
    if (seed % 4 == 1) {  // a tie for the largest magnitude, the negative one first
      x[3] = -5.0f;
      x[7] = 5.0f;
    }
    if (seed % 4 == 2) {  // NaN and a huge value
      x[5] = std::nanf("");
      x[static_cast<size_t>(300 % n)] = -1e30f;
    }
    if (seed % 4 == 3) {  // a zero block
      std::fill(x.begin(), x.begin() + 256, 0.0f);
      x.back() = 2.5f;
    }
    if (seed % 7 == 0) x[9] = INFINITY;
    if (seed % 9 == 0) {  // exact halves after scaling
      for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = 0.5f * static_cast<float>(i % 9) - 2.0f;
    }
    for (DType t : {DType::Q8_K, DType::Q8_0, DType::Q8_1}) {
      set_active_isa(Isa::kScalar);
      const auto ref = quantize(t, x);
      set_active_isa(Isa::kAvx512);
      const auto simd = quantize(t, x);
      EXPECT_EQ(ref, simd) << info(t).name << " seed " << seed;
    }
  }
  set_active_isa(saved);
}

}  // namespace
}  // namespace docdsa::kernels
