// CUDA matrix products against the CPU reference: the fused dequantise-GEMV (decode), the
// 16-bit dequantisation and the cuBLAS GEMM (prefill), and embedding row gathers, for every
// weight type we read, at awkward sizes (odd rows and token counts, rows not a multiple of 256
// where the block size allows).
#include <cmath>
#include <random>
#include <vector>

#include "cuda_test_util.h"
#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/quant.h"

namespace docdsa::kernels::cuda {
namespace {
using testing::CudaTest;
using testing::download;
using testing::upload;

const DType kTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                        DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

struct Mat {
  DType type;
  int64_t rows, cols;
  std::vector<uint8_t> bytes;  // quantised rows
  std::vector<float> deq;      // dequantize_row of them: the reference values
  size_t stride() const { return row_bytes(type, cols); }
};

Mat make_mat(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Mat m{t, rows, cols, {}, {}};
  m.bytes.resize(m.stride() * rows);
  m.deq.resize(static_cast<size_t>(rows * cols));
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& x : row) x = nd(rng);
    quantize_row(t, row.data(), m.bytes.data() + r * m.stride(), cols);
    dequantize_row(t, m.bytes.data() + r * m.stride(), m.deq.data() + r * cols, cols);
  }
  return m;
}

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// The exact product of the dequantised weights, and sum |w x| to scale tolerances by.
void reference(const Mat& m, const std::vector<float>& x, int n_tok, std::vector<double>& y, std::vector<double>& mag) {
  y.assign(static_cast<size_t>(n_tok * m.rows), 0.0);
  mag.assign(y.size(), 0.0);
  for (int t = 0; t < n_tok; ++t)
    for (int64_t r = 0; r < m.rows; ++r) {
      double s = 0, a = 0;
      for (int64_t c = 0; c < m.cols; ++c) {
        const double p = static_cast<double>(m.deq[r * m.cols + c]) * x[t * m.cols + c];
        s += p;
        a += std::fabs(p);
      }
      y[t * m.rows + r] = s;
      mag[t * m.rows + r] = a;
    }
}

Weight weight_of(const Mat& m, const DeviceArray<uint8_t>& d) {
  return {m.type, d.get(), m.rows, m.cols, m.stride()};
}

TEST_F(CudaTest, GemvMatchesDequantisedProductForEveryType) {
  for (DType t : kTypes) {
    const int bs = info(t).block_size == 1 ? 32 : info(t).block_size;
    for (int64_t cols : {int64_t{bs}, int64_t{3 * bs}, int64_t{bs == 32 ? 4160 : 2304}}) {
      for (int64_t rows : {1, 7, 33}) {
        for (int n_tok : {1, 3, 8}) {
          SCOPED_TRACE(std::string(info(t).name) + " rows " + std::to_string(rows) + " cols " + std::to_string(cols) +
                       " tokens " + std::to_string(n_tok));
          const Mat m = make_mat(t, rows, cols, static_cast<uint32_t>(rows * 31 + cols));
          const std::vector<float> x = randn(static_cast<size_t>(n_tok * cols), 7);
          auto dw = upload(m.bytes);
          auto dx = upload(x);
          DeviceArray<float> dy(static_cast<size_t>(n_tok * rows));
          ASSERT_CUDA_OK(gemv(weight_of(m, dw), dx.get(), cols, n_tok, dy.get(), rows, nullptr));
          const std::vector<float> y = download(dy);
          std::vector<double> ref, mag;
          reference(m, x, n_tok, ref, mag);
          for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], 1e-5 * mag[i] + 1e-6) << "output " << i;
        }
      }
    }
  }
}

// The CPU engine dots quantised activations (vec_dot); the GPU keeps them in f32, so the two
// agree to the activation quantisation's error.
TEST_F(CudaTest, GemvTracksCpuVecDot) {
  for (DType t : kTypes) {
    const int64_t cols = info(t).block_size == kQKK ? 1536 : 1568, rows = 5;
    const Mat m = make_mat(t, rows, cols, 3);
    const std::vector<float> x = randn(static_cast<size_t>(cols), 11);
    const DType at = info(t).vec_dot_type;
    std::vector<uint8_t> xq(row_bytes(at, cols));
    quantize_row(at, x.data(), xq.data(), cols);
    auto dw = upload(m.bytes);
    auto dx = upload(x);
    DeviceArray<float> dy(static_cast<size_t>(rows));
    ASSERT_CUDA_OK(gemv(weight_of(m, dw), dx.get(), cols, 1, dy.get(), rows, nullptr));
    const std::vector<float> y = download(dy);
    std::vector<double> ref, mag;
    reference(m, x, 1, ref, mag);
    for (int64_t r = 0; r < rows; ++r) {
      const float cpu = vec_dot(t, cols, m.bytes.data() + r * m.stride(), xq.data(), Isa::kScalar);
      EXPECT_NEAR(y[r], cpu, 0.02 * mag[r]) << info(t).name << " row " << r;
    }
  }
}

TEST_F(CudaTest, DequantiseToHalfIsDequantizeRowRounded) {
  for (DType t : kTypes) {
    const int64_t cols = info(t).block_size == kQKK ? 512 : 96, rows = 9;
    const Mat m = make_mat(t, rows, cols, 5);
    auto dw = upload(m.bytes);
    for (Half h : {Half::kF16, Half::kBF16}) {
      DeviceArray<uint16_t> dh(static_cast<size_t>(4 * cols));
      ASSERT_CUDA_OK(dequantize(weight_of(m, dw), 3, 4, dh.get(), h, nullptr));
      const std::vector<uint16_t> got = download(dh);
      for (int64_t i = 0; i < 4 * cols; ++i) {
        const float ref = m.deq[3 * cols + i];
        ASSERT_EQ(got[i], h == Half::kF16 ? fp32_to_fp16(ref) : fp32_to_bf16(ref)) << info(t).name << " element " << i;
      }
    }
  }
}

TEST_F(CudaTest, GemmMatchesDequantisedProduct) {
  for (DType t : kTypes) {
    for (int n_tok : {9, 33, 130}) {
      for (Half h : {Half::kF16, Half::kBF16}) {
        const int64_t cols = info(t).block_size == kQKK ? 768 : 800, rows = 300;
        SCOPED_TRACE(std::string(info(t).name) + " tokens " + std::to_string(n_tok) + (h == Half::kF16 ? " f16" : " bf16"));
        const Mat m = make_mat(t, rows, cols, static_cast<uint32_t>(n_tok));
        const std::vector<float> x = randn(static_cast<size_t>(n_tok * cols), 13);
        auto dw = upload(m.bytes);
        auto dx = upload(x);
        const int64_t ldy = rows + 3;  // a padded output
        DeviceArray<float> dy(static_cast<size_t>(n_tok * ldy));
        ASSERT_CUDA_OK(gemm(ctx(), weight_of(m, dw), dx.get(), cols, n_tok, dy.get(), ldy, h));
        const std::vector<float> y = download(dy);
        std::vector<double> ref, mag;
        reference(m, x, n_tok, ref, mag);
        const double tol = h == Half::kF16 ? 2e-3 : 1.5e-2;
        for (int tk = 0; tk < n_tok; ++tk)
          for (int64_t r = 0; r < rows; ++r)
            ASSERT_NEAR(y[tk * ldy + r], ref[tk * rows + r], tol * mag[tk * rows + r]) << "token " << tk << " row " << r;
      }
    }
  }
}

TEST_F(CudaTest, GetRowsGathersDequantisedRows) {
  for (DType t : kTypes) {
    const int64_t cols = info(t).block_size == kQKK ? 256 : 160, rows = 50;
    const Mat m = make_mat(t, rows, cols, 17);
    const std::vector<int32_t> ids = {49, 0, 7, 7, 23};
    auto dw = upload(m.bytes);
    auto di = upload(ids);
    DeviceArray<float> dout(ids.size() * cols);
    ASSERT_CUDA_OK(get_rows(weight_of(m, dw), di.get(), static_cast<int>(ids.size()), dout.get(), cols, nullptr));
    const std::vector<float> out = download(dout);
    for (size_t i = 0; i < ids.size(); ++i)
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(out[i * cols + c], m.deq[ids[i] * cols + c]) << info(t).name;
  }
}

TEST_F(CudaTest, RejectsShapesItCannotRun) {
  const Weight w{DType::Q4_K, nullptr, 4, 100, 0};  // 100 is not a multiple of 256
  EXPECT_NE(gemv(w, nullptr, 100, 1, nullptr, 4, nullptr), 0);
  const Weight q8k{DType::Q8_K, nullptr, 4, 256, 0};  // an activation type, not a weight type
  EXPECT_NE(gemv(q8k, nullptr, 256, 1, nullptr, 4, nullptr), 0);
  const Weight ok{DType::Q8_0, nullptr, 4, 64, 68};
  EXPECT_NE(gemv(ok, nullptr, 64, 9, nullptr, 4, nullptr), 0);  // more tokens than the GEMV takes
}

}  // namespace
}  // namespace docdsa::kernels::cuda
