// The CPU backend's matrix products: the one place a weight's type picks its kernel.
// A batch's activations are quantised once per distinct (input, vec-dot type); then every
// job's output rows are cut into chunks and all chunks of all jobs run as one parallel
// section, each chunk sweeping the tokens in tiles that stay in cache.
//
// Repacked weights: on a CPU with AVX-512 VNNI, a weight of a packable type is repacked once,
// at its first product, into the GEMM layout (kernels/gemm.h) and kept in Weight::prepared;
// matmul_rows() then runs the packed kernel (bit-exact with the scalar reference).
#include <algorithm>
#include <mutex>

#include "cpu/backend_cpu.h"
#include "docdsa/kernels/gemm.h"
#include "docdsa/kernels/quant.h"

namespace docdsa {
namespace {

using kernels::DType;

constexpr int kTokenBlock = 64;  // tokens per matmul tile sweep (activations stay in cache)

// The packed form of w, made on first use (rows split across the pool) and kept for the
// model's lifetime; null when its type or this CPU keeps matmul_tile. Only this backend sets
// Weight::prepared, and always to a kernels::PackedWeight.
const kernels::PackedWeight* packed_form(const Weight& w, ThreadPool& pool) {
  if (!kernels::gemm_should_pack(w.type)) return nullptr;
  static std::mutex mu;
  std::lock_guard lock(mu);
  if (!w.prepared) {
    // gemm_should_pack() was asked above: force skips asking again. A weight that cannot be
    // packed (out of memory) keeps its unpacked form too, so it is not tried again each call.
    auto pw = std::make_shared<kernels::PackedWeight>(
        kernels::pack_alloc(w.type, w.data, w.n_out, w.n_in, w.row_stride, /*force=*/true));
    if (pw->packed()) {
      const int64_t ng = pw->n_groups();
      const int nt = pool.size();
      pool.run(nt, [&](int t, int) { kernels::pack_fill(*pw, ng * t / nt, ng * (t + 1) / nt); });
    }
    const_cast<Weight&>(w).prepared = std::move(pw);  // a cache of the rows' form, set once under the lock
  }
  const auto* pw = static_cast<const kernels::PackedWeight*>(w.prepared.get());
  return pw->packed() ? pw : nullptr;  // unpacked: the rows still work through matmul_tile
}

// Output rows [r0, r1) of y = W a for n_tok quantised activation rows.
void matmul_rows(const Weight& w, const kernels::PackedWeight* pw, const uint8_t* act, size_t act_stride, int n_tok, float* y,
                 int64_t y_stride, int64_t r0, int64_t r1) {
  if (pw) {
    for (int t0 = 0; t0 < n_tok; t0 += kTokenBlock)
      kernels::gemm(*pw, act + t0 * act_stride, act_stride, std::min(kTokenBlock, n_tok - t0), y + t0 * y_stride, y_stride, r0,
                    r1);
    return;
  }
  for (int t0 = 0; t0 < n_tok; t0 += kTokenBlock) {
    kernels::MatmulArgs a;
    a.wtype = w.type;
    a.n_in = w.n_in;
    a.w = w.data;
    a.w_stride = w.row_stride;
    a.a = act + t0 * act_stride;
    a.a_stride = act_stride;
    a.n_tok = std::min(kTokenBlock, n_tok - t0);
    a.out = y + t0 * y_stride;
    a.ldo = y_stride;
    kernels::matmul_tile(a, r0, r1);
  }
}

}  // namespace

void CpuBackend::matmul(std::span<const MatJob> jobs, int n_tok) {
  // One quantised copy per distinct (input, vec-dot type); each job points at its copy.
  struct Quantised {
    const float* x;
    int64_t x_stride, n_in;
    DType type;
    size_t offset, stride;
  };
  std::vector<Quantised> qs;
  std::vector<size_t> job_q;
  size_t used = 0;
  for (const MatJob& j : jobs) {
    const DType vt = kernels::info(j.w->type).vec_dot_type;
    size_t k = 0;
    while (k < qs.size() && !(qs[k].x == j.x.data && qs[k].type == vt)) ++k;
    if (k == qs.size()) {
      const size_t stride = (kernels::activation_row_bytes(j.w->type, j.w->n_in) + 63) / 64 * 64;
      qs.push_back({j.x.data, j.x.stride, j.w->n_in, vt, used, stride});
      used += stride * static_cast<size_t>(n_tok);
    }
    job_q.push_back(k);
  }
  if (act_.size() < used) act_.resize(used);
  pool_.run(static_cast<int>(qs.size()) * n_tok, [&](int task, int) {
    const Quantised& q = qs[static_cast<size_t>(task / n_tok)];
    const int t = task % n_tok;
    kernels::quantize_row(q.type, q.x + t * q.x_stride, act_.data() + q.offset + t * q.stride, q.n_in);
  });
  // Row chunks of every job.
  struct Chunk {
    const MatJob* job;
    const Quantised* q;
    const kernels::PackedWeight* pw;
    int64_t r0, r1;
  };
  std::vector<Chunk> chunks;
  const int64_t target_tasks = static_cast<int64_t>(pool_.size()) * 8;
  size_t ji = 0;
  for (const MatJob& j : jobs) {
    const Quantised* q = &qs[job_q[ji++]];
    const kernels::PackedWeight* pw = packed_form(*j.w, pool_);
    int64_t chunk = (j.w->n_out + target_tasks - 1) / target_tasks;
    constexpr int64_t g = kernels::kGemmGroupRows;  // chunk edges on packed row groups
    chunk = std::max<int64_t>(g, (chunk + g - 1) / g * g);
    for (int64_t r = 0; r < j.w->n_out; r += chunk) chunks.push_back({&j, q, pw, r, std::min(j.w->n_out, r + chunk)});
  }
  pool_.run(static_cast<int>(chunks.size()), [&](int task, int) {
    const Chunk& c = chunks[static_cast<size_t>(task)];
    matmul_rows(*c.job->w, c.pw, act_.data() + c.q->offset, c.q->stride, n_tok, c.job->y.data, c.job->y.stride, c.r0, c.r1);
  });
}

}  // namespace docdsa
