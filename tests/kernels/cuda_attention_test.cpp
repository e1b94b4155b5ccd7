// CUDA attention against the CPU scalar reference (attention_ref): token-level sparse
// attention over gathered keys and dense causal attention, for GQA groups of 1 to 16 heads,
// head sizes 16 to 128, single tokens (split over blocks and merged) and odd token counts.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "cuda_test_util.h"
#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/fp16.h"

namespace docdsa::kernels::cuda {
namespace {
using testing::CudaTest;
using testing::download;
using testing::upload;

struct Kv {
  int n_kv, hd, n_ctx;
  std::vector<uint16_t> k_gpu, v_gpu;        // token-major [pos][g][d]
  std::vector<std::vector<uint16_t>> k_cpu;  // per head, blocked (attention.h)
  Kv(int n_kv_, int hd_, int n_ctx_, uint32_t seed) : n_kv(n_kv_), hd(hd_), n_ctx(n_ctx_) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const size_t n = static_cast<size_t>(n_ctx) * n_kv * hd;
    k_gpu.resize(n);
    v_gpu.resize(n);
    for (size_t i = 0; i < n; ++i) k_gpu[i] = fp32_to_fp16(nd(rng)), v_gpu[i] = fp32_to_fp16(nd(rng));
    const int blocks = (n_ctx + kKeyBlock - 1) / kKeyBlock;
    k_cpu.assign(static_cast<size_t>(n_kv), std::vector<uint16_t>(static_cast<size_t>(blocks) * kKeyBlock * hd, 0));
    for (int p = 0; p < n_ctx; ++p)
      for (int g = 0; g < n_kv; ++g)
        for (int d = 0; d < hd; ++d) k_cpu[g][k_offset(p, d, hd)] = k_gpu[(static_cast<size_t>(p) * n_kv + g) * hd + d];
  }
};

// Runs the GPU kernel and the CPU reference for each token and head; compares.
void check(Context& ctx, const Kv& kv, int n_head, int n_tok, const std::vector<int32_t>& n_keys,
           const std::vector<int32_t>* positions, int64_t pos_stride) {
  const int hd = kv.hd, group = n_head / kv.n_kv;
  const int64_t q_stride = n_head * hd + 4, kv_stride = static_cast<int64_t>(kv.n_kv) * hd;
  std::mt19937 rng(static_cast<uint32_t>(n_head * 7 + n_tok));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(n_tok * q_stride));
  for (auto& x : q) x = nd(rng);
  auto dq = upload(q);
  auto dn = upload(n_keys);
  auto dk = upload(kv.k_gpu);
  auto dv = upload(kv.v_gpu);
  DeviceArray<int32_t> dpos;
  if (positions) dpos = upload(*positions);
  DeviceArray<float> dout(static_cast<size_t>(n_tok) * n_head * hd);
  AttentionArgsGpu a;
  a.n_tok = n_tok;
  a.n_head = n_head;
  a.n_kv = kv.n_kv;
  a.head_dim = hd;
  a.q = dq.get();
  a.q_stride = q_stride;
  a.n_keys = dn.get();
  a.positions = positions ? dpos.get() : nullptr;
  a.pos_stride = pos_stride;
  a.k = dk.get();
  a.v = dv.get();
  a.kv_stride = kv_stride;
  a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  a.out = dout.get();
  a.out_stride = static_cast<int64_t>(n_head) * hd;
  a.max_keys = *std::max_element(n_keys.begin(), n_keys.end());
  ASSERT_CUDA_OK(attention(ctx, a));
  const auto out = download(dout);
  std::vector<float> ref(static_cast<size_t>(hd));
  for (int t = 0; t < n_tok; ++t)
    for (int h = 0; h < n_head; ++h) {
      const int g = h / group;
      AttentionArgs c;
      c.head_dim = hd;
      c.n_rows = 1;
      c.q = q.data() + t * q_stride + h * hd;
      c.q_stride = hd;
      c.n_keys = &n_keys[t];
      c.positions = positions ? positions->data() + t * pos_stride : nullptr;
      c.k = kv.k_cpu[g].data();
      c.v = kv.v_gpu.data() + g * hd;
      c.v_stride = kv_stride;
      c.scale = a.scale;
      c.out = ref.data();
      c.out_stride = hd;
      kernels::attention(c, Isa::kScalar);
      for (int d = 0; d < hd; ++d)
        ASSERT_NEAR(out[(static_cast<size_t>(t) * n_head + h) * hd + d], ref[d], 2e-3f)
            << "token " << t << " head " << h << " dim " << d;
    }
}

struct Shape {
  int n_head, n_kv, hd;
};
const Shape kShapes[] = {{1, 1, 64}, {3, 3, 64}, {9, 3, 64}, {12, 2, 128}, {16, 1, 128}, {5, 1, 128}, {6, 2, 16}, {4, 4, 32}};

TEST_F(CudaTest, SparseAttentionMatchesReference) {
  for (const Shape& s : kShapes) {
    const int n_ctx = 5000;
    Kv kv(s.n_kv, s.hd, n_ctx, 1);
    for (int n_tok : {1, 5}) {
      for (int len : {1, 37, 1000, 3001}) {
        SCOPED_TRACE("heads " + std::to_string(s.n_head) + "/" + std::to_string(s.n_kv) + " d " + std::to_string(s.hd) +
                     " tokens " + std::to_string(n_tok) + " keys " + std::to_string(len));
        std::mt19937 rng(static_cast<uint32_t>(len));
        const int64_t stride = len + 3;
        std::vector<int32_t> pos(static_cast<size_t>(n_tok * stride), 0), n_keys;
        std::vector<int32_t> all(static_cast<size_t>(n_ctx));
        for (int i = 0; i < n_ctx; ++i) all[i] = i;
        for (int t = 0; t < n_tok; ++t) {
          std::shuffle(all.begin(), all.end(), rng);
          const int nk = std::max(1, len - 2 * t);  // each token its own list and length
          std::sort(all.begin(), all.begin() + nk);
          std::copy(all.begin(), all.begin() + nk, pos.begin() + t * stride);
          n_keys.push_back(nk);
        }
        check(ctx(), kv, s.n_head, n_tok, n_keys, &pos, stride);
      }
    }
  }
}

TEST_F(CudaTest, DenseCausalAttentionMatchesReference) {
  for (const Shape& s : kShapes) {
    const int n_ctx = 4100;
    Kv kv(s.n_kv, s.hd, n_ctx, 2);
    for (int n_tok : {1, 7}) {
      for (int p0 : {0, 130, n_ctx - 7}) {
        SCOPED_TRACE("heads " + std::to_string(s.n_head) + "/" + std::to_string(s.n_kv) + " tokens " + std::to_string(n_tok) +
                     " from " + std::to_string(p0));
        std::vector<int32_t> n_keys;
        for (int t = 0; t < n_tok; ++t) n_keys.push_back(p0 + t + 1);
        check(ctx(), kv, s.n_head, n_tok, n_keys, nullptr, 0);
      }
    }
  }
}

}  // namespace
}  // namespace docdsa::kernels::cuda
