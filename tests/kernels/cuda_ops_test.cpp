// CUDA row and element-wise ops against kernels/cpu (ops.h): RMSNorm, the RoPE table (plain,
// NeoX and YaRN), RoPE application, SwiGLU, residual add, bias, the f16 KV-cache write and the
// greedy argmax, at odd sizes.
#include <cmath>
#include <vector>

#include "cuda_test_util.h"
#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/ops.h"
#include "random_fill.h"

namespace docdsa::kernels::cuda {
namespace {
using testing::CudaTest;
using testing::download;
using testing::upload;

TEST_F(CudaTest, RmsNormMatchesCpu) {
  for (int n : {1, 7, 576, 1536, 4097}) {
    for (int rows : {1, 3}) {
      const int64_t stride = n + 5;
      const auto x = test::random_normal(static_cast<size_t>(rows * stride), static_cast<uint32_t>(n), 3.0f);
      const auto w = test::random_normal(static_cast<size_t>(n), 2);
      const int64_t ystride = n + 1;  // output rows laid out differently from the input's
      auto dx = upload(x);
      auto dw = upload(w);
      DeviceArray<float> dy(static_cast<size_t>(rows * ystride));
      ASSERT_CUDA_OK(rms_norm(dx.get(), stride, dw.get(), dy.get(), ystride, rows, n, 1e-5f, nullptr));
      const auto y = download(dy);
      std::vector<float> ref(static_cast<size_t>(n));
      for (int r = 0; r < rows; ++r) {
        kernels::rms_norm(x.data() + r * stride, w.data(), ref.data(), n, 1e-5f);
        for (int i = 0; i < n; ++i) ASSERT_NEAR(y[r * ystride + i], ref[i], 1e-5f * (1.0f + std::fabs(ref[i]))) << "n " << n;
      }
    }
  }
}

std::vector<RopeParams> rope_variants() {
  std::vector<RopeParams> v;
  RopeParams p;
  p.n_rot = 64;
  p.theta_scale = std::pow(10000.0f, -2.0f / 64);
  v.push_back(p);
  p.neox = true;
  p.n_rot = 128;
  p.theta_scale = std::pow(1000000.0f, -2.0f / 128);
  v.push_back(p);
  // YaRN: 4x extension of a 32K model.
  p.freq_scale = 0.25f;
  p.ext_factor = 1.0f;
  rope_yarn_corr_dims(p.n_rot, 32768, 1000000.0f, 32.0f, 1.0f, &p.corr_low, &p.corr_high);
  v.push_back(p);
  p.ext_factor = 0.0f;  // plain linear scaling
  v.push_back(p);
  return v;
}

TEST_F(CudaTest, RopeTableMatchesRopeCache) {
  const int n_pos = 131072 + 17;
  for (const RopeParams& p : rope_variants()) {
    const int half = p.n_rot / 2;
    DeviceArray<float> dc(static_cast<size_t>(n_pos) * half), ds(static_cast<size_t>(n_pos) * half);
    ASSERT_CUDA_OK(rope_table(p, n_pos, dc.get(), ds.get(), nullptr));
    const auto c = download(dc), s = download(ds);
    std::vector<float> rc(static_cast<size_t>(half)), rs(static_cast<size_t>(half));
    for (int pos : {0, 1, 2, 3, 1000, 4095, 77777, 131072, n_pos - 1}) {
      kernels::rope_cache(p, pos, rc.data(), rs.data());
      for (int i = 0; i < half; ++i) {
        ASSERT_NEAR(c[static_cast<size_t>(pos) * half + i], rc[i], 2e-6f) << "pos " << pos << " pair " << i;
        ASSERT_NEAR(s[static_cast<size_t>(pos) * half + i], rs[i], 2e-6f) << "pos " << pos << " pair " << i;
      }
    }
  }
}

TEST_F(CudaTest, RopeApplyMatchesCpu) {
  for (const RopeParams& p : rope_variants()) {
    for (int n_heads : {1, 3, 9}) {
      const int head_dim = 128, n_tok = 5, n_pos = 5000;
      const int64_t head_stride = head_dim, tok_stride = n_heads * head_dim + 8;
      auto x = test::random_normal(static_cast<size_t>(n_tok * tok_stride), static_cast<uint32_t>(n_heads));
      const std::vector<int32_t> pos = {4999, 0, 17, 17, 2048};
      const int half = p.n_rot / 2;
      DeviceArray<float> dc(static_cast<size_t>(n_pos) * half), ds(static_cast<size_t>(n_pos) * half);
      auto dx = upload(x);
      auto dp = upload(pos);
      ASSERT_CUDA_OK(rope_table(p, n_pos, dc.get(), ds.get(), nullptr));
      ASSERT_CUDA_OK(
          rope_apply(dx.get(), n_tok, n_heads, tok_stride, head_stride, dp.get(), dc.get(), ds.get(), p.n_rot, p.neox, nullptr));
      const auto y = download(dx);
      std::vector<float> rc(static_cast<size_t>(half)), rs(static_cast<size_t>(half));
      for (int t = 0; t < n_tok; ++t) {
        kernels::rope_cache(p, pos[t], rc.data(), rs.data());
        for (int h = 0; h < n_heads; ++h) {
          float* v = x.data() + t * tok_stride + h * head_stride;
          kernels::rope_apply(v, p.n_rot, rc.data(), rs.data(), p.neox);
          for (int d = 0; d < head_dim; ++d) ASSERT_NEAR(y[t * tok_stride + h * head_stride + d], v[d], 2e-5f);
        }
      }
    }
  }
}

TEST_F(CudaTest, ElementwiseOpsMatchCpu) {
  // Rows of n, the two operands laid out with different strides.
  for (int n : {1, 1001, 100003}) {
    for (int rows : {1, 3}) {
      const int64_t as = n + 2, bs = n + 7;
      const auto a = test::random_normal(static_cast<size_t>(rows * as), 1, 4.0f), b = test::random_normal(static_cast<size_t>(rows * bs), 2);
      auto da = upload(a);
      auto db = upload(b);
      ASSERT_CUDA_OK(swiglu(da.get(), as, db.get(), bs, rows, n, nullptr));
      auto ref = a;
      for (int r = 0; r < rows; ++r) kernels::swiglu(ref.data() + r * as, b.data() + r * bs, n);
      auto got = download(da);
      for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-6f * (1.0f + std::fabs(ref[i])));
      ASSERT_CUDA_OK(add(da.get(), as, db.get(), bs, rows, n, nullptr));
      for (int r = 0; r < rows; ++r) kernels::add(ref.data() + r * as, b.data() + r * bs, n);
      got = download(da);
      for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-6f * (1.0f + std::fabs(ref[i])));
    }
  }
  const int rows = 3, n = 37;
  const int64_t stride = 40;
  auto y = test::random_normal(static_cast<size_t>(rows * stride), 5);
  const auto bias = test::random_normal(static_cast<size_t>(n), 6);
  auto dy = upload(y);
  auto dbias = upload(bias);
  ASSERT_CUDA_OK(add_bias_rows(dy.get(), dbias.get(), rows, n, stride, nullptr));
  kernels::add_bias_rows(y.data(), bias.data(), rows, n, stride);
  EXPECT_EQ(download(dy), y);
}

TEST_F(CudaTest, KvWriteStoresHalvesTokenMajor) {
  const int n_kv = 3, hd = 64, n_tok = 5, n_ctx = 40;
  const int64_t src_stride = n_kv * hd + 16, v_stride = n_kv * hd, kv_stride = n_kv * hd;
  const auto k = test::random_normal(static_cast<size_t>(n_tok * src_stride), 1), v = test::random_normal(static_cast<size_t>(n_tok * v_stride), 2);
  const std::vector<int32_t> pos = {39, 0, 5, 6, 20};
  auto dk = upload(k);
  auto dv = upload(v);
  auto dp = upload(pos);
  DeviceArray<uint16_t> kc(static_cast<size_t>(n_ctx * kv_stride)), vc(static_cast<size_t>(n_ctx * kv_stride));
  ASSERT_CUDA_OK(memset_device(kc.get(), 0, kc.size() * 2));
  ASSERT_CUDA_OK(memset_device(vc.get(), 0, vc.size() * 2));
  ASSERT_CUDA_OK(
      kv_write(dk.get(), src_stride, dv.get(), v_stride, n_tok, n_kv, hd, dp.get(), kc.get(), vc.get(), kv_stride, nullptr));
  const auto hk = download(kc), hv = download(vc);
  for (int t = 0; t < n_tok; ++t)
    for (int c = 0; c < n_kv * hd; ++c) {
      ASSERT_EQ(hk[pos[t] * kv_stride + c], fp32_to_fp16(k[t * src_stride + c]));
      ASSERT_EQ(hv[pos[t] * kv_stride + c], fp32_to_fp16(v[t * v_stride + c]));
    }
  EXPECT_EQ(hk[1 * kv_stride], 0);  // untouched positions stay as they were
}

TEST_F(CudaTest, ArgmaxTakesTheFirstLargest) {
  for (int n : {1, 5, 49152, 151936}) {
    auto x = test::random_normal(static_cast<size_t>(n), static_cast<uint32_t>(n));
    if (n > 100) {
      x[n - 3] = 50.0f;  // a tie: the earlier index wins
      x[n / 2] = 50.0f;
    }
    int best = 0;
    for (int i = 1; i < n; ++i)
      if (x[i] > x[best]) best = i;
    auto dx = upload(x);
    DeviceArray<int32_t> out(1);
    ASSERT_CUDA_OK(argmax(dx.get(), n, out.get(), nullptr));
    EXPECT_EQ(download(out)[0], best) << "n " << n;
  }
}

}  // namespace
}  // namespace docdsa::kernels::cuda
