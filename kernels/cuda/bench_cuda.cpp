// docdsa-cuda-bench: device benchmarks of the CUDA kernels, one table on stdout.
//   GEMV (decode) GB/s for each weight type, GEMM (prefill) TFLOP/s, and DSA vs dense
//   attention at a long context (indexer scores + top-k + sparse attention against dense).
// Times are medians of repeated runs after a warm-up (wall clock around a stream sync).
// Usage: docdsa-cuda-bench [--ctx N] [--quick]. Exit 77 when no GPU is usable.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "docdsa/kernels/cuda.h"

namespace cu = docdsa::kernels::cuda;
using docdsa::kernels::DType;

namespace {

int g_reps = 15;

double median_ms(const std::function<int()>& f) {
  if (f() != 0 || cu::synchronize() != 0) return -1;
  std::vector<double> t;
  for (int i = 0; i < g_reps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    if (f() != 0 || cu::synchronize() != 0) return -1;
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::nth_element(t.begin(), t.begin() + static_cast<long>(t.size() / 2), t.end());
  return t[t.size() / 2];
}

void row(const std::string& op, const std::string& shape, double ms, const std::string& metric) {
  std::printf("| %-22s | %-38s | %10.3f | %-28s |\n", op.c_str(), shape.c_str(), ms, metric.c_str());
}

char buf[128];
const char* fmt(const char* f, double v) {
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int ctx_len = 131072;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--ctx") && i + 1 < argc)
      ctx_len = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--quick"))
      g_reps = 5;
    else {
      std::fprintf(stderr, "usage: %s [--ctx N] [--quick]\n", argv[0]);
      return 2;
    }
  }
  std::string why;
  if (cu::device_count(&why) == 0) {
    std::fprintf(stderr, "docdsa-cuda-bench: %s\n", why.c_str());
    return 77;
  }
  auto ctx = cu::Context::create(nullptr, &why);
  if (!ctx) {
    std::fprintf(stderr, "docdsa-cuda-bench: %s\n", why.c_str());
    return 1;
  }
  std::printf("device: %s, %.0f GiB\n\n", cu::device_name().c_str(), cu::device_memory_bytes() / 1073741824.0);
  std::printf("| %-22s | %-38s | %10s | %-28s |\n", "op", "shape", "ms", "rate");
  std::printf("|%s|%s|%s|%s|\n", std::string(24, '-').c_str(), std::string(40, '-').c_str(), std::string(12, '-').c_str(),
              std::string(30, '-').c_str());

  // Weights: contents do not change the speed; a byte pattern that is a small finite half.
  const int64_t rows = 32768, cols = 4096;
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::F16, DType::BF16}) {
    const size_t stride = docdsa::kernels::row_bytes(t, cols);
    cu::DeviceArray<uint8_t> w(stride * rows);
    cu::DeviceArray<float> x(static_cast<size_t>(8 * cols)), y(static_cast<size_t>(8 * rows));
    cu::memset_device(w.get(), 0x11, w.size());
    cu::memset_device(x.get(), 0, x.size() * 4);
    const cu::Weight wt{t, w.get(), rows, cols, stride};
    for (int n_tok : {1, 4}) {
      const double ms = median_ms([&] { return cu::gemv(wt, x.get(), cols, n_tok, y.get(), rows, nullptr); });
      const std::string shape = std::to_string(rows) + "x" + std::to_string(cols) + " " + docdsa::kernels::info(t).name + ", " +
                                std::to_string(n_tok) + " tok";
      row("gemv (decode)", shape, ms, fmt("%.0f GB/s weights", w.size() / (ms * 1e6)));
    }
  }

  // Prefill GEMM: a Qwen2.5-1.5B FFN matrix, a 2048-token chunk.
  {
    const int64_t r = 8960, c = 1536;
    const int n_tok = 2048;
    for (DType t : {DType::Q4_K, DType::Q6_K, DType::Q8_0, DType::F16}) {
      const size_t stride = docdsa::kernels::row_bytes(t, c);
      cu::DeviceArray<uint8_t> w(stride * r);
      cu::DeviceArray<float> x(static_cast<size_t>(n_tok * c)), y(static_cast<size_t>(n_tok * r));
      cu::memset_device(w.get(), 0x11, w.size());
      cu::memset_device(x.get(), 0, x.size() * 4);
      const cu::Weight wt{t, w.get(), r, c, stride};
      for (cu::Half h : {cu::Half::kF16, cu::Half::kBF16}) {
        const double ms = median_ms([&] { return cu::gemm(*ctx, wt, x.get(), c, n_tok, y.get(), r, h); });
        const std::string shape = std::to_string(r) + "x" + std::to_string(c) + " " + docdsa::kernels::info(t).name + ", " +
                                  std::to_string(n_tok) + " tok" + (h == cu::Half::kF16 ? " f16" : " bf16");
        row("gemm (prefill)", shape, ms, fmt("%.1f TFLOP/s", 2.0 * r * c * n_tok / (ms * 1e9)));
      }
    }
  }

  // Attention at ctx_len for one layer of a Qwen2.5-1.5B shape (12 query heads, 2 KV, d 128),
  // DSA defaults (k 2048, 64 sinks, 512 window, indexer rank 16 per KV head, 12 heads).
  {
    const int n_head = 12, n_kv = 2, hd = 128, K = 2048, S = 64, W = 512, rank = 16, dim = n_kv * rank;
    const int64_t kv_stride = n_kv * hd;
    cu::DeviceArray<uint16_t> kc(static_cast<size_t>(ctx_len) * kv_stride), vc(static_cast<size_t>(ctx_len) * kv_stride);
    cu::memset_device(kc.get(), 0x11, kc.size() * 2);
    cu::memset_device(vc.get(), 0x11, vc.size() * 2);
    cu::DeviceArray<uint8_t> icache(static_cast<size_t>(ctx_len + 16) * dim);
    cu::DeviceArray<float> kscale(static_cast<size_t>(ctx_len + 16));
    cu::memset_device(icache.get(), 0x91, icache.size());
    cu::memset_device(kscale.get(), 0x3c, kscale.size() * 4);
    std::mt19937 rng(1);
    for (int n_tok : {1, 256}) {
      const int p0 = ctx_len - n_tok;
      std::vector<int32_t> pos(static_cast<size_t>(n_tok)), n_dense(static_cast<size_t>(n_tok)),
          n_sparse(static_cast<size_t>(n_tok), K), ends(static_cast<size_t>(n_tok));
      std::vector<int32_t> lists(static_cast<size_t>(n_tok) * K);
      std::uniform_int_distribution<int32_t> any(0, p0 - 1);
      for (int t = 0; t < n_tok; ++t) {
        pos[t] = p0 + t;
        n_dense[t] = p0 + t + 1;
        ends[t] = p0 + t + 1 - W;
        // A random selection (duplicates allowed: only the gather pattern matters here).
        auto first = lists.begin() + static_cast<long>(t) * K;
        for (int j = 0; j < K; ++j) first[j] = any(rng);
        std::sort(first, first + K);
      }
      cu::DeviceArray<int32_t> dpos(pos.data(), pos.size()), dnd(n_dense.data(), n_dense.size()),
          dns(n_sparse.data(), n_sparse.size()), dlists(lists.data(), lists.size()), dends(ends.data(), ends.size());
      cu::DeviceArray<float> q(static_cast<size_t>(n_tok) * n_head * hd), out(q.size());
      cu::memset_device(q.get(), 0, q.size() * 4);
      cu::AttentionArgsGpu a;
      a.n_tok = n_tok;
      a.n_head = n_head;
      a.n_kv = n_kv;
      a.head_dim = hd;
      a.q = q.get();
      a.q_stride = n_head * hd;
      a.k = kc.get();
      a.v = vc.get();
      a.kv_stride = kv_stride;
      a.scale = 0.088f;
      a.out = out.get();
      a.out_stride = n_head * hd;
      cu::AttentionArgsGpu dense = a, sparse = a;
      dense.n_keys = dnd.get();
      dense.max_keys = p0 + n_tok;
      sparse.n_keys = dns.get();
      sparse.positions = dlists.get();
      sparse.pos_stride = K;
      sparse.max_keys = K;
      // Indexer: n_head int8 queries of rank dims each, over every earlier key.
      cu::DeviceArray<int8_t> iq(static_cast<size_t>(n_tok) * n_head * rank);
      cu::DeviceArray<float> iqs(static_cast<size_t>(n_tok) * n_head);
      std::vector<int32_t> off(n_head);
      for (int h = 0; h < n_head; ++h) off[h] = (h / (n_head / n_kv)) * rank;
      cu::DeviceArray<int32_t> doff(off.data(), off.size());
      cu::memset_device(iq.get(), 1, iq.size());
      cu::memset_device(iqs.get(), 0x3c, iqs.size() * 4);
      const int64_t base = S / 16 * 16, ld = ctx_len - base;
      cu::DeviceArray<float> scores(static_cast<size_t>(n_tok) * ld);
      cu::DeviceArray<int32_t> sel(static_cast<size_t>(n_tok) * K), nsel(static_cast<size_t>(n_tok));
      cu::IndexScoresArgs ia;
      ia.n_rows = n_tok;
      ia.n_heads = n_head;
      ia.head_dim = rank;
      ia.q = iq.get();
      ia.qscale = iqs.get();
      ia.offset = doff.get();
      ia.cache = icache.get();
      ia.kscale = kscale.get();
      ia.dim = dim;
      ia.s0 = base;
      ia.s1 = ctx_len - W + 1;
      ia.row_end = dends.get();
      ia.out = scores.get();
      ia.ld = ld;
      const std::string what = std::to_string(n_tok) + " tok at " + std::to_string(ctx_len / 1024) + "K, 12/2 heads d128";
      const double t_dense = median_ms([&] { return cu::attention(*ctx, dense); });
      const double t_scores = median_ms([&] { return cu::index_scores(ia, nullptr); });
      const double t_select = median_ms(
          [&] { return cu::dsa_select(scores.get(), ld, base, dpos.get(), n_tok, K, S, W, sel.get(), nsel.get(), nullptr); });
      const double t_sparse = median_ms([&] { return cu::attention(*ctx, sparse); });
      const double t_dsa = t_scores + t_select + t_sparse;
      const char* phase = n_tok == 1 ? "decode" : "prefill";
      row(std::string("dense attn ") + phase, what, t_dense, fmt("%.1f us/token/layer", t_dense * 1e3 / n_tok));
      row(std::string("indexer scores ") + phase, what, t_scores, fmt("%.1f Gkey/s", double(n_tok) * ctx_len / (t_scores * 1e6)));
      row(std::string("top-k select ") + phase, what + ", k 2048", t_select, "");
      row(std::string("sparse attn ") + phase, what + ", k 2048", t_sparse, fmt("%.1f us/token/layer", t_sparse * 1e3 / n_tok));
      row(std::string("DSA total ") + phase, what, t_dsa, fmt("%.2fx faster than dense", t_dense / t_dsa));
    }
  }
  return 0;
}
