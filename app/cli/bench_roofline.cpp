// docdsa bench --roofline: this machine's measured limits (int8 VNNI and AMX, fp32 FMA, memory
// read bandwidth; all threads), then the quantised GEMM (prefill, many tokens) and GEMV
// (decode, one token) on the layer shapes of the models we run, each as a share of its limit
// and against the previous kernel (matmul_tile) timed in the same run. F16/BF16 prefill rows
// are shares of the fp32 FMA peak. Each timing sample is paired with a sample of its limit
// taken just before it, so a share stays readable while a shared machine's speed drifts.
// Synthetic weights of the real types and shapes; no model needed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "cli_common.h"
#include "docdsa/engine/thread_pool.h"
#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/gemm.h"
#include "docdsa/kernels/peak.h"

namespace docdsa::cli {
namespace {

using clock_type = std::chrono::steady_clock;
namespace kn = docdsa::kernels;

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Runs fn(thread) on every pool thread at once; returns the seconds the slowest took.
double timed_all(ThreadPool& pool, const std::function<void(int)>& fn) {
  const auto t0 = clock_type::now();
  pool.run(pool.size(), [&](int task, int) { fn(task); });
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// A limit probe on all threads, sampled as often as asked: each sample runs ~0.05 s and
// returns its rate (operations or bytes per second).
class Limit {
 public:
  // Compute: `probe(iters)` on every thread, returning operations done.
  Limit(ThreadPool& pool, double (*probe)(int64_t)) : pool_(&pool), probe_(probe) {
    if (probe(1) == 0.0) return;
    iters_ = 1 << 12;
    while (timed_all(pool, [&](int) { probe(iters_); }) < 0.05 && iters_ < (int64_t{1} << 34)) iters_ *= 2;
  }
  // Read bandwidth: every thread streams its slice of `buf` (`bytes`, more than any cache).
  Limit(ThreadPool& pool, const uint8_t* buf, size_t bytes) : pool_(&pool), buf_(buf), bytes_(bytes) {}
  double sample() {
    if (buf_) {
      const size_t slice = bytes_ / static_cast<size_t>(pool_->size()) / 256 * 256;
      const double s = timed_all(*pool_, [&](int t) {
        sink_.fetch_xor(kn::peak::read_stream(buf_ + slice * static_cast<size_t>(t), slice), std::memory_order_relaxed);
      });
      return static_cast<double>(slice) * static_cast<double>(pool_->size()) / s;
    }
    if (iters_ == 0) return 0.0;
    std::vector<double> ops(static_cast<size_t>(pool_->size()));
    const double s = timed_all(*pool_, [&](int t) { ops[static_cast<size_t>(t)] = probe_(iters_); });
    double total = 0;
    for (double o : ops) total += o;
    return total / s;
  }
  // The median of `reps` samples.
  double rate(int reps) {
    std::vector<double> v;
    for (int r = 0; r < reps; ++r) v.push_back(sample());
    return median_of(v);
  }

 private:
  ThreadPool* pool_;
  double (*probe_)(int64_t) = nullptr;
  int64_t iters_ = 0;
  const uint8_t* buf_ = nullptr;
  size_t bytes_ = 0;
  std::atomic<uint64_t> sink_{0};  // keeps the reads: each thread xors in its result
};

struct Shape {
  const char* model;
  const char* layer;
  kn::DType type;
  int64_t n_out, n_in;
};

// Random quants with sane fp16 scales (the kernels' speed does not depend on the values).
std::vector<uint8_t> random_rows(kn::DType t, int64_t n_out, int64_t n_in, uint32_t seed) {
  const size_t rb = kn::row_bytes(t, n_in);
  std::vector<uint8_t> w(rb * static_cast<size_t>(n_out));
  if (t == kn::DType::F16 || t == kn::DType::BF16) {  // real values: random bits would be subnormal or NaN
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    std::vector<float> row(static_cast<size_t>(n_in));
    for (int64_t r = 0; r < n_out; ++r) {
      for (float& v : row) v = nd(rng);
      kn::quantize_row(t, row.data(), w.data() + static_cast<size_t>(r) * rb, n_in);
    }
    return w;
  }
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i + 8 <= w.size(); i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(w.data() + i, &x, 8);
  }
  const size_t bb = kn::info(t).block_bytes;
  const uint16_t h = kn::fp32_to_fp16(0.01f);
  std::vector<size_t> fields{0};
  if (t == kn::DType::Q4_1 || t == kn::DType::Q4_K || t == kn::DType::Q5_K) fields = {0, 2};
  if (t == kn::DType::Q6_K) fields = {208};
  for (size_t b = 0; b + bb <= w.size(); b += bb)
    for (size_t f : fields) std::memcpy(w.data() + b + f, &h, 2);
  return w;
}

struct RowResult {
  double t_new = 0, t_old = 0;
  double t_vnni = 0;  // prefill with AMX: the packed kernel with AMX switched off (DOCDSA_NO_AMX)
  // Each timing sample is paired with a limit sample taken just before it; per kernel, the
  // median over samples of 1 / (seconds per call * limit rate), so share = work * inv_*.
  double inv_new = 0, inv_old = 0, inv_vnni = 0;
  double limit = 0, limit_lo = 0, limit_hi = 0;  // the limit samples' median and range
};

// Times gemm (packed) and matmul_tile on rows [copy * n_out, (copy + 1) * n_out), cycling
// `copies` so decode streams from memory rather than cache, splitting rows across the pool
// at 16-row boundaries. Before each timing sample, one sample of `limit`: a shared machine's
// speed drifts within minutes, so a share is read against the limit measured beside it.
RowResult time_row(ThreadPool& pool, Limit& limit, const Shape& s, int n_tok, int copies, int reps) {
  const int64_t total = s.n_out * copies;
  const auto w = random_rows(s.type, total, s.n_in, 42);
  const size_t rb = kn::row_bytes(s.type, s.n_in);
  const kn::PackedWeight pw = kn::pack_weight(s.type, w.data(), total, s.n_in, rb, true);
  std::vector<float> x(static_cast<size_t>(n_tok * s.n_in));
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(rng);
  const size_t a_stride = kn::activation_row_bytes(s.type, s.n_in);
  std::vector<uint8_t> a(a_stride * static_cast<size_t>(n_tok));
  kn::quantize_activations(s.type, x.data(), s.n_in, n_tok, s.n_in, a.data(), a_stride);
  // The block sums the packed kernels broadcast, built once with the activations, as the
  // engine does (engine/src/cpu/matmul.cpp), not by every task in every call.
  std::vector<uint8_t> aux(kn::gemm_aux_bytes(s.type, n_tok, s.n_in));
  kn::gemm_build_aux(s.type, a.data(), a_stride, n_tok, s.n_in, aux.data());
  const int64_t ldo = total;
  std::vector<float> out(static_cast<size_t>(ldo * n_tok));
  const int64_t groups = (s.n_out + 15) / 16;
  const int n_tasks = static_cast<int>(std::min<int64_t>(groups, pool.size() * 4));
  auto run_once = [&](bool packed, int copy) {
    const int64_t base = copy * s.n_out;
    pool.run(n_tasks, [&](int task, int) {
      const int64_t r0 = base + std::min(s.n_out, groups * task / n_tasks * 16);
      const int64_t r1 = base + std::min(s.n_out, groups * (task + 1) / n_tasks * 16);
      // Token blocks as the CPU backend sweeps them (engine/src/cpu/matmul.cpp).
      const int tb = kn::gemm_token_block(s.type, s.n_in);
      for (int t0 = 0; t0 < n_tok; t0 += tb) {
        const int nt = std::min(tb, n_tok - t0);
        const uint8_t* at = a.data() + static_cast<size_t>(t0) * a_stride;
        float* ot = out.data() + t0 * ldo;
        if (packed) {
          kn::gemm(pw, at, a_stride, nt, ot, ldo, r0, r1, kn::active_isa(),
                   aux.empty() ? nullptr : aux.data() + kn::gemm_aux_bytes(s.type, t0, s.n_in));
        } else {
          kn::MatmulArgs m{s.type, s.n_in, w.data(), rb, at, a_stride, nt, ot, ldo};
          kn::matmul_tile(m, r0, r1);
        }
      }
    });
  };
  RowResult res;
  std::vector<double> limits;
  const bool amx = n_tok >= kn::kGemmAmxMinTokens && kn::gemm_amx_applies(s.type);
  for (int pass = amx ? 0 : 1; pass < 3; ++pass) {
    const bool packed = pass < 2;
    if (pass == 0) kn::set_gemm_amx(false);  // the VNNI kernel first, then AMX back on
    if (pass == 1 && amx) kn::set_gemm_amx(true);
    // Calls per sample: enough for ~50 ms, at least one pass over the copies.
    run_once(packed, 0);
    const auto t0 = clock_type::now();
    run_once(packed, copies > 1 ? 1 : 0);
    const double one = std::max(1e-7, std::chrono::duration<double>(clock_type::now() - t0).count());
    const int calls = std::max(copies, static_cast<int>(std::min(2000.0, 0.05 / one)));
    std::vector<double> per_call, inv;
    int copy = 0;
    for (int r = 0; r < reps; ++r) {
      const double lim = limit.sample();
      limits.push_back(lim);
      const auto t1 = clock_type::now();
      for (int c = 0; c < calls; ++c) {
        run_once(packed, copy);
        copy = (copy + 1) % copies;
      }
      per_call.push_back(std::chrono::duration<double>(clock_type::now() - t1).count() / calls);
      inv.push_back(1.0 / (per_call.back() * lim));
    }
    (pass == 0 ? res.t_vnni : packed ? res.t_new : res.t_old) = median_of(per_call);
    (pass == 0 ? res.inv_vnni : packed ? res.inv_new : res.inv_old) = median_of(inv);
  }
  res.limit = median_of(limits);
  res.limit_lo = *std::min_element(limits.begin(), limits.end());
  res.limit_hi = *std::max_element(limits.begin(), limits.end());
  return res;
}

}  // namespace

int bench_roofline(int gemm_tokens, int reps, int threads, bool json) {
  ThreadPool pool(threads);
  reps = std::max(reps, 5);
  const bool amx = kn::peak::amx_enable();
  Limit vnni_limit(pool, kn::peak::vnni_int8_ops), amx_limit(pool, kn::peak::amx_int8_ops),
      fma_limit(pool, kn::peak::fma_f32_ops);
  const double vnni = vnni_limit.rate(reps);
  const double amx_rate = amx ? amx_limit.rate(reps) : 0.0;
  const double fma = fma_limit.rate(reps);
  // Read bandwidth over 1 GiB, more than any last-level cache we run on.
  const size_t bytes = size_t{1} << 30;
  std::unique_ptr<uint8_t, decltype(&std::free)> buf(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)), &std::free);
  if (!buf) return report(Error{ErrorCode::kInternal, "bench --roofline: cannot allocate 1 GiB for the bandwidth test"});
  pool.run(pool.size(), [&](int t, int) {
    const size_t slice = bytes / static_cast<size_t>(pool.size());
    std::memset(buf.get() + slice * static_cast<size_t>(t), t + 1, slice);
  });
  Limit bw_limit(pool, buf.get(), bytes);
  const double bw = bw_limit.rate(reps);

  // Shares of the VNNI peak (what the int8 kernels ran at before AMX); with AMX active, the
  // VNNI kernel's share on the same rows is printed last, for the AMX/VNNI ratio.
  nlohmann::json rows = nlohmann::json::array();
  if (!json) {
    std::printf(
        "roofline, %d threads, medians of %d; each row's share is the median of its samples over the limit\n"
        "sampled just before each (\"limit\": that median and range)\n",
        pool.size(), reps);
    std::printf("  int8 VNNI   %8.1f GOPS\n", vnni / 1e9);
    if (amx)
      std::printf("  int8 AMX    %8.1f GOPS\n", amx_rate / 1e9);
    else
      std::printf("  int8 AMX    unavailable\n");
    std::printf("  fp32 FMA    %8.1f GFLOPS\n", fma / 1e9);
    std::printf("  read BW     %8.1f GB/s (1 GiB stream)\n", bw / 1e9);
    std::printf("%-10s %-12s %-5s %6s %6s %5s | %9s %7s | %9s %7s | %7s | %-22s | %s\n", "model", "layer", "type", "n_out",
                "n_in", "tok", "new", "share", "old", "share", "new/old", "limit (range)", "vnni (AMX off) share, new/vnni");
  }
  const Shape shapes[] = {
      {"qwen1.5b", "attn_q/o", kn::DType::Q4_K, 1536, 1536}, {"qwen1.5b", "ffn_up/gate", kn::DType::Q4_K, 8960, 1536},
      {"qwen1.5b", "ffn_down", kn::DType::Q4_K, 1536, 8960}, {"qwen1.5b", "ffn_down", kn::DType::Q6_K, 1536, 8960},
      {"qwen1.5b", "output", kn::DType::Q6_K, 151936, 1536}, {"smol135m", "attn_q/o", kn::DType::Q4_1, 576, 576},
      {"smol135m", "ffn_up", kn::DType::Q4_1, 1536, 576},    {"smol135m", "ffn_down", kn::DType::Q4_1, 576, 1536},
      {"-", "square", kn::DType::Q4_0, 1536, 1536},          {"-", "square", kn::DType::Q8_0, 1536, 1536},
      {"-", "square", kn::DType::Q5_K, 1536, 1536},          {"smol135m", "ffn_up", kn::DType::F16, 1536, 576},
      {"smol135m", "ffn_up", kn::DType::BF16, 1536, 576},
  };
  for (const Shape& s : shapes) {
    for (int n_tok : {gemm_tokens, 1}) {
      const double wbytes = static_cast<double>(kn::row_bytes(s.type, s.n_in)) * static_cast<double>(s.n_out);
      if (n_tok > 1 && s.n_out > 10000) continue;  // the output layer runs for the last token only
      // Decode cycles copies totalling >= 768 MiB so the weights come from memory.
      const int copies = n_tok == 1 ? static_cast<int>(std::max(1.0, std::ceil(768.0 * (1 << 20) / wbytes))) : 1;
      // Prefill is held to the int8 compute peak (operations; F16/BF16 to the fp32 FMA peak, which
      // BF16 dot products may pass), decode to the read bandwidth (weight bytes).
      const bool prefill = n_tok > 1;
      const bool half = s.type == kn::DType::F16 || s.type == kn::DType::BF16;
      Limit& limit = prefill ? (half ? fma_limit : vnni_limit) : bw_limit;
      const RowResult r = time_row(pool, limit, s, n_tok, copies, reps);
      nlohmann::json j{{"model", s.model}, {"layer", s.layer}, {"type", kn::info(s.type).name},
                       {"n_out", s.n_out}, {"n_in", s.n_in},   {"tokens", n_tok},
                       {"new_s", r.t_new}, {"old_s", r.t_old}, {"speedup", r.t_old / r.t_new}};
      const double work = prefill ? 2.0 * static_cast<double>(s.n_out) * static_cast<double>(s.n_in) * n_tok : wbytes;
      const double v_new = work / r.t_new / 1e9, v_old = work / r.t_old / 1e9;
      const double share_new = work * r.inv_new, share_old = work * r.inv_old;
      j[prefill ? "new_gops" : "new_gbps"] = v_new;
      j[prefill ? "old_gops" : "old_gbps"] = v_old;
      j[prefill ? (half ? "share_of_fp32_peak" : "share_of_int8_peak") : "share_of_bandwidth"] = share_new;
      j["old_share"] = share_old;
      j["limit"] = {{"median", r.limit}, {"min", r.limit_lo}, {"max", r.limit_hi}};
      if (r.t_vnni > 0) {
        j["vnni_gops"] = work / r.t_vnni / 1e9;
        j["vnni_share_of_int8_peak"] = work * r.inv_vnni;
      }
      rows.push_back(j);
      if (!json) {
        std::printf("%-10s %-12s %-5s %6ld %6ld %5d | %6.1f %-2s %6.1f%% | %6.1f %-2s %6.1f%% | %6.2fx", s.model, s.layer,
                    kn::info(s.type).name, static_cast<long>(s.n_out), static_cast<long>(s.n_in), n_tok, v_new,
                    prefill ? "GO" : "GB", 100 * share_new, v_old, prefill ? "GO" : "GB", 100 * share_old, r.t_old / r.t_new);
        const double u = 1e9;
        std::printf(" | %6.1f (%6.1f-%6.1f)", r.limit / u, r.limit_lo / u, r.limit_hi / u);
        if (r.t_vnni > 0) std::printf(" | %6.1f%%, %5.2fx", 100 * work * r.inv_vnni, r.t_vnni / r.t_new);
        std::printf("\n");
      }
      std::fflush(stdout);
    }
  }
  if (json)
    print_json({{"threads", pool.size()},
                {"reps", reps},
                {"int8_vnni_ops", vnni},
                {"int8_amx_ops", amx_rate},
                {"fp32_fma_flops", fma},
                {"read_bandwidth_bytes_per_s", bw},
                {"rows", rows}});
  return static_cast<int>(kOk);
}

}  // namespace docdsa::cli
