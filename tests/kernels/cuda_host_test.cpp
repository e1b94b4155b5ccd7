// Runs on every machine (label unit): the CUDA dequantisers are compiled for the host too, so
// their block and sub-block indexing is checked against dequantize_row without a GPU. Every
// GPU GEMV, GEMM tile and embedding gather reads weights through them.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "../../kernels/cuda/common.cuh"

namespace docdsa::kernels::cuda {
namespace {

template <DType T>
void check_type(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(n)), ref(static_cast<size_t>(n));
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> q(row_bytes(T, n));
  quantize_row(T, x.data(), q.data(), n);
  dequantize_row(T, q.data(), ref.data(), n);
  float y[32];
  for (int64_t c = 0; c < n / 32; ++c) {
    detail::dequant32<T>(q.data(), c, y);
    for (int l = 0; l < 32; ++l) ASSERT_EQ(y[l], ref[c * 32 + l]) << info(T).name << " element " << c * 32 + l;
  }
}

TEST(CudaHost, Dequant32MatchesDequantizeRowForEveryType) {
  check_type<DType::F32>(96, 1);
  check_type<DType::F16>(96, 2);
  check_type<DType::BF16>(96, 3);
  check_type<DType::Q4_0>(160, 4);
  check_type<DType::Q4_1>(160, 5);
  check_type<DType::Q8_0>(160, 6);
  check_type<DType::Q4_K>(768, 7);
  check_type<DType::Q5_K>(768, 8);
  check_type<DType::Q6_K>(768, 9);
}

TEST(CudaHost, TypeSwitchCoversTheWeightTypesOnly) {
  for (uint32_t t = 0; t < 40; ++t) {
    const TypeInfo* ti = type_info(t);
    const bool weight = ti && ti->is_weight_type;
    EXPECT_EQ(gemv_supported(static_cast<DType>(t)), weight) << "type " << t;
  }
}

}  // namespace
}  // namespace docdsa::kernels::cuda
