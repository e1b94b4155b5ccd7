// The CPU backend's buffers, row operations, cache writes and logits. Each operation is one
// parallel section over the batch's tokens (a single token runs inline on the caller).
#include "cpu/backend_cpu.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/indexer.h"
#include "docdsa/kernels/quant.h"

namespace docdsa {

Result<std::unique_ptr<Backend>> make_cpu_backend(const ModelConfig& c, const BackendConfig& cfg) {
  std::unique_ptr<CpuBackend> b(new CpuBackend(c, cfg));
  TRY_STATUS(b->init());
  return std::unique_ptr<Backend>(std::move(b));
}

CpuBackend::CpuBackend(const ModelConfig& c, const BackendConfig& cfg) : c_(c), cfg_(cfg), pool_(cfg.n_threads) {}

int64_t CpuBackend::k_head_stride() const {
  const int64_t blocks = (cfg_.n_ctx + kernels::kKeyBlock - 1) / kernels::kKeyBlock;
  return blocks * kernels::kKeyBlock * c_.head_dim;
}

Status CpuBackend::init() {
  const size_t kv_dim = static_cast<size_t>(c_.n_head_kv) * c_.head_dim;
  try {
    k_cache_.resize(static_cast<size_t>(c_.n_layer));
    v_cache_.resize(static_cast<size_t>(c_.n_layer));
    for (int il = 0; il < c_.n_layer; ++il) {
      k_cache_[il].resize(static_cast<size_t>(c_.n_head_kv) * static_cast<size_t>(k_head_stride()));
      v_cache_[il].resize(static_cast<size_t>(cfg_.n_ctx) * kv_dim);
    }
    if (cfg_.indexer) {
      const Indexer& ix = *cfg_.indexer;
      const int dim = ix.key_dim();
      const size_t padded =
          static_cast<size_t>((cfg_.n_ctx + kernels::kIndexBlock - 1) / kernels::kIndexBlock) * kernels::kIndexBlock;
      idx_cache_.resize(static_cast<size_t>(c_.n_layer));
      kr_cache_.resize(static_cast<size_t>(c_.n_layer));
      for (auto& kr : kr_cache_) kr.resize(static_cast<size_t>(cfg_.n_ctx) * kv_dim);
      idx_scale_.resize(static_cast<size_t>(c_.n_layer));
      for (int il = 0; il < c_.n_layer; ++il) {
        idx_cache_[il].assign(padded * static_cast<size_t>(dim), 128);
        idx_scale_[il].assign(padded, 0.0f);
      }
      const size_t rows = static_cast<size_t>(cfg_.n_batch) * cfg_.idx_heads;
      iq8_.resize(rows * ix.rank());
      iqs_.resize(rows);
      iq_off_.resize(static_cast<size_t>(cfg_.idx_heads));
      const int group = c_.n_head / c_.n_head_kv;
      for (int h = 0; h < cfg_.idx_heads; ++h) iq_off_[h] = (cfg_.dsa.heads == IndexerHeads::kQuery ? h / group : h) * ix.rank();
      sel_.resize(static_cast<size_t>(cfg_.n_batch));
      score_buf_.resize(padded);
    }
    // Widest activation row in any vec-dot type: F32 of the widest input.
    const size_t q_dim = static_cast<size_t>(c_.n_head) * c_.head_dim;
    const size_t widest = static_cast<size_t>(std::max<int64_t>({c_.n_embd, c_.n_ff, static_cast<int64_t>(q_dim)}));
    act_.resize(static_cast<size_t>(cfg_.n_batch) * widest * 4 + 64);
    if (cfg_.ext_group > 0) {
      // Rotation by `shift` positions for every possible shift: d - d' < n_ctx.
      const int pairs = c_.n_rot / 2;
      rot_cos_.resize(static_cast<size_t>(cfg_.n_ctx) * pairs);
      rot_sin_.resize(static_cast<size_t>(cfg_.n_ctx) * pairs);
      kernels::RopeParams unit = cfg_.rope;
      unit.attn_factor = 1.0f;
      unit.ext_factor = 0.0f;  // a pure rotation: the magnitude was applied when the key was cached
      for (int sh = 0; sh < cfg_.n_ctx; ++sh)
        kernels::rope_cache(unit, sh, rot_cos_.data() + static_cast<size_t>(sh) * pairs,
                            rot_sin_.data() + static_cast<size_t>(sh) * pairs);
    }
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kOutOfRange, "not enough memory for a " + std::to_string(cfg_.n_ctx) + "-token context");
  }
  return {};
}

// ---- Buffers ----------------------------------------------------------------------------------

Tensor CpuBackend::alloc(int rows, int64_t cols) {
  std::vector<float>& v = tensors_.emplace_back(static_cast<size_t>(rows) * static_cast<size_t>(cols), 0.0f);
  return Tensor{v.data(), rows, cols, cols};
}

void CpuBackend::upload(Tensor t, int n, const float* host) {
  for (int r = 0; r < n; ++r) std::memcpy(t.data + r * t.stride, host + r * t.cols, sizeof(float) * static_cast<size_t>(t.cols));
}

void CpuBackend::download(Tensor t, int n, float* host) {
  for (int r = 0; r < n; ++r) std::memcpy(host + r * t.cols, t.data + r * t.stride, sizeof(float) * static_cast<size_t>(t.cols));
}

uint64_t CpuBackend::kv_bytes() const {
  return 2ull * c_.n_layer * cfg_.n_ctx * c_.n_head_kv * c_.head_dim * sizeof(uint16_t);
}

uint64_t CpuBackend::indexer_bytes() const {
  uint64_t b = 0;
  for (size_t il = 0; il < idx_cache_.size(); ++il) b += idx_cache_[il].size() + idx_scale_[il].size() * sizeof(float);
  for (const auto& kr : kr_cache_) b += kr.size() * sizeof(uint16_t);  // DSA's row-major K copy
  return b;
}

// ---- Row operations ---------------------------------------------------------------------------

void CpuBackend::embed(const Weight& table, std::span<const TokenId> tokens, Tensor x) {
  pool_.run(static_cast<int>(tokens.size()), [&](int t, int) {
    kernels::dequantize_row(table.type, table.data + static_cast<size_t>(tokens[t]) * table.row_stride, x.data + t * x.stride,
                            x.cols);
  });
}

void CpuBackend::rms_norm(Tensor x, const Weight& w, float eps, Tensor out, int n) {
  pool_.run(n, [&](int t, int) {
    kernels::rms_norm(x.data + t * x.stride, w.f32(), out.data + t * out.stride, static_cast<int>(x.cols), eps);
  });
}

void CpuBackend::add_bias(Tensor x, const Weight& b, int n) {
  pool_.run(n, [&](int t, int) { kernels::add(x.data + t * x.stride, b.f32(), static_cast<int>(x.cols)); });
}

void CpuBackend::add(Tensor y, Tensor x, int n) {
  pool_.run(n, [&](int t, int) { kernels::add(y.data + t * y.stride, x.data + t * x.stride, static_cast<int>(y.cols)); });
}

void CpuBackend::swiglu(Tensor gate, Tensor up, int n) {
  pool_.run(
      n, [&](int t, int) { kernels::swiglu(gate.data + t * gate.stride, up.data + t * up.stride, static_cast<int>(gate.cols)); });
}

void CpuBackend::rope(Tensor q, Tensor k, int n, int p0) {
  const int hd = c_.head_dim;
  pool_.run(n, [&](int t, int) {
    float* qt = q.data + t * q.stride;
    float* kt = k.data + t * k.stride;
    float cos_t[128], sin_t[128];  // n_rot <= head_dim <= 256
    kernels::rope_cache(cfg_.rope, p0 + t, cos_t, sin_t);
    for (int h = 0; h < c_.n_head; ++h) kernels::rope_apply(qt + h * hd, c_.n_rot, cos_t, sin_t, cfg_.rope.neox);
    for (int h = 0; h < c_.n_head_kv; ++h) kernels::rope_apply(kt + h * hd, c_.n_rot, cos_t, sin_t, cfg_.rope.neox);
    // Q is rounded to f16 like the cache, as llama.cpp's f16 K.Q product does.
    for (int64_t i = 0; i < q.cols; ++i) qt[i] = kernels::round_fp16(qt[i]);
  });
}

void CpuBackend::logits(const Weight& w, Tensor x, int n, float* host) {
  const MatJob job{&w, x, Tensor{host, n, w.n_out, w.n_out}};  // host memory is the CPU's own
  matmul(std::span(&job, 1), n);
}

// ---- Caches -----------------------------------------------------------------------------------

void CpuBackend::store_kv(int il, Tensor k, Tensor v, int n, int p0) {
  const int hd = c_.head_dim, kv_dim = c_.n_head_kv * hd;
  uint16_t* kc = k_cache_[static_cast<size_t>(il)].data();
  uint16_t* vc = v_cache_[static_cast<size_t>(il)].data();
  const int64_t kstride = k_head_stride();
  pool_.run(n, [&](int t, int) {
    const int pos = p0 + t;
    const float* kt = k.data + t * k.stride;
    const float* vt = v.data + t * v.stride;
    // The key row in f16 once, for both layouts: the row-major copy for sparse gathers (when
    // kept) takes it as it is, the attention cache's blocked layout scattered.
    uint16_t* krow = kr_cache_.empty() ? nullptr : kr_cache_[static_cast<size_t>(il)].data() + static_cast<size_t>(pos) * kv_dim;
    thread_local std::vector<uint16_t> kbuf;
    if (krow == nullptr) {
      kbuf.resize(static_cast<size_t>(kv_dim));
      krow = kbuf.data();
    }
    for (int i = 0; i < kv_dim; ++i) krow[i] = kernels::fp32_to_fp16(kt[i]);
    for (int g = 0; g < c_.n_head_kv; ++g)
      for (int dd = 0; dd < hd; ++dd) kc[g * kstride + kernels::k_offset(pos, dd, hd)] = krow[g * hd + dd];
    uint16_t* vdst = vc + static_cast<size_t>(pos) * kv_dim;
    for (int i = 0; i < kv_dim; ++i) vdst[i] = kernels::fp32_to_fp16(vt[i]);
  });
}

uint8_t* CpuBackend::cache_part(int il, CachePart part, int head) const {
  const auto L = static_cast<size_t>(il);
  switch (part) {
    case CachePart::kKeys:
      return reinterpret_cast<uint8_t*>(const_cast<uint16_t*>(k_cache_[L].data() + head * k_head_stride()));
    case CachePart::kValues:
      return reinterpret_cast<uint8_t*>(const_cast<uint16_t*>(v_cache_[L].data()));
    case CachePart::kIndexKeys:
      return const_cast<uint8_t*>(idx_cache_[L].data());
    case CachePart::kIndexScales:
      return reinterpret_cast<uint8_t*>(const_cast<float*>(idx_scale_[L].data()));
  }
  return nullptr;
}

void CpuBackend::cache_read(int il, CachePart part, int head, uint64_t offset, void* dst, uint64_t bytes) const {
  std::memcpy(dst, cache_part(il, part, head) + offset, bytes);
}

void CpuBackend::cache_write(int il, CachePart part, int head, uint64_t offset, const void* src, uint64_t bytes) {
  std::memcpy(cache_part(il, part, head) + offset, src, bytes);
  if (part == CachePart::kKeys && !kr_cache_.empty()) sync_key_rows(il, head, offset, bytes);
}

}  // namespace docdsa
