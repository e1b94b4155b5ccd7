// The CPU backend's matrix products: the one place a weight's type picks its kernel.
// A batch's activations are quantised once per distinct (input, vec-dot type), with the block
// sums the packed kernels read built once per (input, weight type); then every job's output
// rows are cut into chunks and all chunks of all jobs run as one parallel section, each chunk
// sweeping the tokens in tiles that stay in cache.
//
// Repacked weights: on a CPU with AVX-512 VNNI, prepare() repacks every weight of a packable
// type once per model, when the model gets its CPU backend, into the GEMM layout
// (kernels/gemm.h) and keeps it in Weight::prepared; matmul_rows() then runs the packed
// kernels (AMX tiles for large batches where granted, VNNI otherwise; bit-exact with the
// scalar reference). The file pages of a packed weight are released (Model::prepare_weights).
#include <algorithm>
#include <new>

#include "cpu/backend_cpu.h"
#include "docdsa/kernels/gemm.h"
#include "docdsa/kernels/quant.h"

namespace docdsa {
namespace {

using kernels::DType;

constexpr int kTokenBlock = 64;  // tokens per matmul_tile sweep (activations stay in cache)

// The packed form of w, or null when its type or this CPU keeps matmul_tile (or the weight
// was never prepared: the op-level tests drive the backend without a model).
const kernels::PackedWeight* packed_form(const Weight& w) {
  const auto* pw = static_cast<const kernels::PackedWeight*>(w.prepared.get());
  return pw && pw->packed() ? pw : nullptr;
}

// Output rows [r0, r1) of y = W a for n_tok quantised activation rows (aux: their block sums
// for a packed weight).
void matmul_rows(const Weight& w, const kernels::PackedWeight* pw, const uint8_t* act, size_t act_stride, const uint8_t* aux,
                 int n_tok, float* y, int64_t y_stride, int64_t r0, int64_t r1) {
  if (pw) {
    const int tb = kernels::gemm_token_block(w.type, w.n_in);
    for (int t0 = 0; t0 < n_tok; t0 += tb)
      kernels::gemm(*pw, act + t0 * act_stride, act_stride, std::min(tb, n_tok - t0), y + t0 * y_stride, y_stride, r0, r1,
                    kernels::active_isa(), aux + kernels::gemm_aux_bytes(w.type, t0, w.n_in));
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

Status CpuBackend::prepare(const Model& m) {
  m.prepare_weights([this](const Weight& w) -> std::shared_ptr<const void> {
    if (!kernels::gemm_should_pack(w.type)) return nullptr;
    // gemm_should_pack() was asked above: force skips asking again. Out of memory, the weight
    // keeps its rows (null): pack_alloc reports it by an unpacked result, make_shared by a throw
    // that must not leave the engine.
    std::shared_ptr<kernels::PackedWeight> pw;
    try {
      pw = std::make_shared<kernels::PackedWeight>(
          kernels::pack_alloc(w.type, w.data, w.n_out, w.n_in, w.row_stride, /*force=*/true));
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
    if (!pw->packed()) return nullptr;
    const int64_t ng = pw->n_groups();
    const int nt = pool_.size();
    pool_.run(nt, [&](int t, int) { kernels::pack_fill(*pw, ng * t / nt, ng * (t + 1) / nt); });
    return pw;
  });
  return {};
}

void CpuBackend::matmul(std::span<const MatJob> jobs, int n_tok) {
  // One quantised copy per distinct (input, vec-dot type); each job points at its copy.
  using Quantised = MatQuantised;
  using Sums = MatSums;
  // The backend's lists, cleared: a matmul runs per layer per token and allocates nothing.
  std::vector<Quantised>& qs = mm_qs_;
  std::vector<Sums>& sums = mm_sums_;
  std::vector<size_t>&job_q = mm_job_q_, &job_sums = mm_job_sums_;
  qs.clear();
  sums.clear();
  job_q.clear();
  job_sums.clear();
  size_t used = 0, aux_used = 0;
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
    size_t a = sums.size();
    if (packed_form(*j.w)) {
      a = 0;
      while (a < sums.size() && !(sums[a].q == k && sums[a].wtype == j.w->type)) ++a;
      if (a == sums.size()) {
        sums.push_back({k, j.w->type, aux_used});
        aux_used += (kernels::gemm_aux_bytes(j.w->type, n_tok, j.w->n_in) + 63) / 64 * 64;
      }
    }
    job_sums.push_back(a);
  }
  if (act_.size() < used) act_.resize(used);
  if (aux_.size() < aux_used) aux_.resize(aux_used);
  pool_.run(static_cast<int>(qs.size()) * n_tok, [&](int task, int) {
    const size_t qi = static_cast<size_t>(task / n_tok);
    const Quantised& q = qs[qi];
    const int t = task % n_tok;
    uint8_t* row = act_.data() + q.offset + t * q.stride;
    kernels::quantize_row(q.type, q.x + t * q.x_stride, row, q.n_in);
    for (const Sums& s : sums)
      if (s.q == qi)
        kernels::gemm_build_aux(s.wtype, row, q.stride, 1, q.n_in,
                                aux_.data() + s.offset + kernels::gemm_aux_bytes(s.wtype, t, q.n_in));
  });
  // Row chunks of every job.
  using Chunk = MatChunk;
  std::vector<Chunk>& chunks = mm_chunks_;
  chunks.clear();
  const int64_t target_tasks = static_cast<int64_t>(pool_.size()) * 8;
  for (size_t ji = 0; ji < jobs.size(); ++ji) {
    const MatJob& j = jobs[ji];
    const Quantised* q = &qs[job_q[ji]];
    const kernels::PackedWeight* pw = packed_form(*j.w);
    const uint8_t* aux = pw ? aux_.data() + sums[job_sums[ji]].offset : nullptr;
    int64_t chunk = (j.w->n_out + target_tasks - 1) / target_tasks;
    constexpr int64_t g = kernels::kGemmGroupRows;  // chunk edges on packed row groups
    chunk = std::max<int64_t>(g, (chunk + g - 1) / g * g);
    for (int64_t r = 0; r < j.w->n_out; r += chunk) chunks.push_back({&j, q, pw, aux, r, std::min(j.w->n_out, r + chunk)});
  }
  pool_.run(static_cast<int>(chunks.size()), [&](int task, int) {
    const Chunk& c = chunks[static_cast<size_t>(task)];
    matmul_rows(*c.job->w, static_cast<const kernels::PackedWeight*>(c.pw), act_.data() + c.q->offset, c.q->stride, c.aux, n_tok, c.job->y.data, c.job->y.stride, c.r0,
                c.r1);
  });
}

}  // namespace docdsa
