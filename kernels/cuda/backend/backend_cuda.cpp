// The CUDA backend: each Backend operation is one or a few kernel launches on one stream
// (kernels/cuda). The forward pass stays on the host and only passes device handles; the
// host waits only where the interface hands data back (logits, selections, downloads).
#include "docdsa/engine/backend_cuda.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <numeric>
#include <tuple>
#include <vector>

#include "docdsa/engine/attention_mass.h"
#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/cuda.h"
#include "docdsa/kernels/fp16.h"

namespace docdsa {
namespace cu = kernels::cuda;

namespace {

// A failed launch or copy means a broken device or a bug, not bad input: the interface has no
// error channel, so say what failed and stop rather than compute on garbage.
void check(int rc, const char* what) {
  if (rc == 0) return;
  std::fprintf(stderr, "docdsa: CUDA %s failed: %s\n", what, cu::error_string(rc));
  std::abort();
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(const ModelConfig& c, const BackendConfig& cfg) : c_(c), cfg_(cfg) {}
  Status init();

  const char* name() const override { return "cuda"; }
  int n_threads() const override { return 1; }

  Tensor alloc(int rows, int64_t cols) override {
    auto& a = tensors_.emplace_back(static_cast<size_t>(rows) * static_cast<size_t>(cols));
    if (!a.ok()) check(2 /* cudaErrorMemoryAllocation */, "tensor allocation");
    check(cu::memset_device(a.get(), 0, a.size() * sizeof(float), stream()), "memset");
    return Tensor{a.get(), rows, cols, cols};
  }
  void upload(Tensor t, int n, const float* host) override {
    for (int r = 0; r < n; ++r)
      check(cu::copy_to_device(t.data + r * t.stride, host + r * t.cols, sizeof(float) * t.cols, stream()), "upload");
    check(cu::synchronize(stream()), "upload");
  }
  void download(Tensor t, int n, float* host) override {
    for (int r = 0; r < n; ++r)
      check(cu::copy_to_host(host + r * t.cols, t.data + r * t.stride, sizeof(float) * t.cols, stream()), "download");
  }
  uint64_t kv_bytes() const override { return 2ull * c_.n_layer * cfg_.n_ctx * kv_dim() * sizeof(uint16_t); }
  uint64_t indexer_bytes() const override {
    if (!cfg_.indexer) return 0;
    return static_cast<uint64_t>(c_.n_layer) * padded_ctx() * (cfg_.indexer->key_dim() + sizeof(float));
  }

  void embed(const Weight& table, std::span<const TokenId> tokens, Tensor x) override;
  void rms_norm(Tensor x, const Weight& w, float eps, Tensor out, int n) override;
  void matmul(std::span<const MatJob> jobs, int n) override;
  void add_bias(Tensor x, const Weight& b, int n) override;
  void add(Tensor y, Tensor x, int n) override;
  void swiglu(Tensor gate, Tensor up, int n) override;
  void rope(Tensor q, Tensor k, int n, int p0) override;
  void logits(const Weight& w, Tensor x, int n, float* host) override;

  void store_kv(int il, Tensor k, Tensor v, int n, int p0) override;
  void store_index(int il, Tensor q, Tensor k, int n, int p0) override;
  void select(int il, int n, int p0) override;
  std::span<const int32_t> selection(int t) const override {
    return {sel_host_.data() + static_cast<size_t>(t) * sel_stride_, static_cast<size_t>(nsel_host_[static_cast<size_t>(t)])};
  }
  void observe(int il, int pos, int k) override;
  void attention(int il, Tensor q, Tensor out, int n, int p0, bool sparse) override;
  void attention_mass(int il, Tensor q, std::span<const int> rows, int p0, double* out) override;

  void cache_read(int il, CachePart part, int head, uint64_t offset, void* dst, uint64_t bytes) const override;
  void cache_write(int il, CachePart part, int head, uint64_t offset, const void* src, uint64_t bytes) override;
  int64_t k_head_stride() const override {
    return (cfg_.n_ctx + kernels::kKeyBlock - 1) / kernels::kKeyBlock * kernels::kKeyBlock * c_.head_dim;
  }

 private:
  cu::Stream stream() const { return ctx_->stream(); }
  int64_t kv_dim() const { return static_cast<int64_t>(c_.n_head_kv) * c_.head_dim; }
  int64_t padded_ctx() const { return (cfg_.n_ctx + kernels::kIndexBlock - 1) / kernels::kIndexBlock * kernels::kIndexBlock; }
  // The device copy of a weight (uploaded on first use, in its file type).
  cu::Weight device(const Weight& w);
  const float* device_f32(const Weight& w) { return static_cast<const float*>(device(w).data); }
  // Device positions p0 .. p0 + n - 1 (a view into an iota of the whole context).
  const int32_t* positions(int p0) const { return iota_.get() + p0; }
  // Host copy of one layer's token-major K cache, as the CPU's blocked layout of one head.
  std::vector<uint16_t> blocked_keys(int il, int head) const;
  void selections_to_host(int n, int stride);

  ModelConfig c_;
  BackendConfig cfg_;
  std::unique_ptr<cu::Context> ctx_;
  std::deque<cu::DeviceArray<float>> tensors_;
  // Device copies of weights, by their host bytes and shape (the bytes of a weight must not
  // change while the backend lives: model files are mapped read-only).
  using WeightKey = std::tuple<const uint8_t*, uint32_t, int64_t, int64_t>;
  std::map<WeightKey, cu::DeviceArray<uint8_t>> weights_;
  std::vector<cu::DeviceArray<uint16_t>> k_cache_, v_cache_;  // [layer] token-major [n_ctx][kv_dim] f16
  cu::DeviceArray<int32_t> iota_;
  cu::DeviceArray<float> rope_cos_, rope_sin_;  // [n_ctx][n_rot / 2]
  cu::DeviceArray<float> logits_;
  cu::DeviceArray<int32_t> n_keys_;  // dense: keys per query row
  cu::DeviceArray<int32_t> ids_;     // embed: token ids
  // DSA
  std::vector<cu::DeviceArray<uint8_t>> idx_cache_;
  std::vector<cu::DeviceArray<float>> idx_scale_;
  std::vector<cu::DeviceArray<float>> proj_;  // [layer] [n_kv][rank][head_dim]
  cu::DeviceArray<int8_t> iq8_;
  cu::DeviceArray<float> iqs_;
  cu::DeviceArray<int32_t> iq_off_, row_end_, sel_, nsel_;
  cu::DeviceArray<float> scores_;
  int64_t score_rows_ = 0;  // query rows scores_ holds at full context
  std::vector<int32_t> sel_host_, nsel_host_;
  int sel_stride_ = 0;
};

Status CudaBackend::init() {
  std::string why;
  if (cfg_.ext_group > 0)
    return make_error(ErrorCode::kUnsupported,
                      "context extension (--extend) does not run on the CUDA backend yet; use --device cpu");
  if (c_.head_dim != 16 && c_.head_dim != 32 && c_.head_dim != 64 && c_.head_dim != 128)
    return make_error(ErrorCode::kUnsupported,
                      "the CUDA backend runs head sizes 16, 32, 64 and 128, not " + std::to_string(c_.head_dim));
  ctx_ = cu::Context::create(nullptr, &why);
  if (!ctx_) return make_error(ErrorCode::kUnsupported, why);
  // Caches, tables and the score buffer must fit beside the weights (checked as they upload).
  const uint64_t rope_bytes = 2ull * cfg_.n_ctx * (c_.n_rot / 2) * sizeof(float);
  // Checked before any allocation: a device out of memory midway would fail far less clearly.
  const uint64_t need = kv_bytes() + indexer_bytes() + rope_bytes + cfg_.weight_bytes;
  const uint64_t free = cu::device_free_bytes();
  if (need > free)
    return make_error(ErrorCode::kOutOfRange,
                      "--device cuda: a " + std::to_string(cfg_.n_ctx) + "-token context needs " + std::to_string(need >> 20) +
                          " MiB of GPU memory (caches and " + std::to_string(cfg_.weight_bytes >> 20) + " MiB of weights); " +
                          cu::device_name() + " has " + std::to_string(free >> 20) + " MiB free; use a shorter context or --device cpu");
  const auto alloc_ok = [](bool ok) { return ok ? Status{} : Status(make_error(ErrorCode::kOutOfRange, "out of GPU memory")); };
  for (int il = 0; il < c_.n_layer; ++il) {
    k_cache_.emplace_back(static_cast<size_t>(cfg_.n_ctx) * kv_dim());
    v_cache_.emplace_back(static_cast<size_t>(cfg_.n_ctx) * kv_dim());
    TRY_STATUS(alloc_ok(k_cache_.back().ok() && v_cache_.back().ok()));
    check(cu::memset_device(k_cache_.back().get(), 0, k_cache_.back().size() * 2, stream()), "memset");
    check(cu::memset_device(v_cache_.back().get(), 0, v_cache_.back().size() * 2, stream()), "memset");
  }
  std::vector<int32_t> iota(static_cast<size_t>(cfg_.n_ctx));
  std::iota(iota.begin(), iota.end(), 0);
  iota_ = cu::DeviceArray<int32_t>(iota.data(), iota.size());
  const int half = c_.n_rot / 2;
  rope_cos_ = cu::DeviceArray<float>(static_cast<size_t>(cfg_.n_ctx) * half);
  rope_sin_ = cu::DeviceArray<float>(static_cast<size_t>(cfg_.n_ctx) * half);
  n_keys_ = cu::DeviceArray<int32_t>(static_cast<size_t>(std::max(1, cfg_.n_batch)));
  TRY_STATUS(alloc_ok(iota_.ok() && rope_cos_.ok() && rope_sin_.ok() && n_keys_.ok()));
  check(cu::rope_table(cfg_.rope, cfg_.n_ctx, rope_cos_.get(), rope_sin_.get(), stream()), "rope table");
  if (cfg_.indexer) {
    const Indexer& ix = *cfg_.indexer;
    const int dim = ix.key_dim(), r = ix.rank();
    const int group = c_.n_head / c_.n_head_kv;
    for (int il = 0; il < c_.n_layer; ++il) {
      std::vector<uint8_t> empty(static_cast<size_t>(padded_ctx() * dim), 128);
      idx_cache_.emplace_back(empty.data(), empty.size());
      idx_scale_.emplace_back(static_cast<size_t>(padded_ctx()));
      proj_.emplace_back(ix.proj(il, 0), static_cast<size_t>(c_.n_head_kv) * r * c_.head_dim);
      TRY_STATUS(alloc_ok(idx_cache_.back().ok() && idx_scale_.back().ok() && proj_.back().ok()));
      check(cu::memset_device(idx_scale_.back().get(), 0, idx_scale_.back().size() * 4, stream()), "memset");
    }
    const size_t rows = static_cast<size_t>(cfg_.n_batch) * cfg_.idx_heads;
    iq8_ = cu::DeviceArray<int8_t>(rows * r);
    iqs_ = cu::DeviceArray<float>(rows);
    std::vector<int32_t> off(static_cast<size_t>(cfg_.idx_heads));
    for (int h = 0; h < cfg_.idx_heads; ++h) off[h] = (cfg_.dsa.heads == IndexerHeads::kQuery ? h / group : h) * r;
    iq_off_ = cu::DeviceArray<int32_t>(off.data(), off.size());
    row_end_ = cu::DeviceArray<int32_t>(static_cast<size_t>(cfg_.n_batch));
    const int k = std::max(cfg_.dsa.top_k, 1);
    sel_ = cu::DeviceArray<int32_t>(static_cast<size_t>(cfg_.n_batch) * k);
    nsel_ = cu::DeviceArray<int32_t>(static_cast<size_t>(cfg_.n_batch));
    // Scores of a chunk of query rows over the whole context: at most 256 MiB at a time.
    score_rows_ = std::max<int64_t>(1, std::min<int64_t>(cfg_.n_batch, (int64_t{256} << 20) / (4 * padded_ctx())));
    scores_ = cu::DeviceArray<float>(static_cast<size_t>(score_rows_ * padded_ctx()));
    TRY_STATUS(alloc_ok(iq8_.ok() && iqs_.ok() && iq_off_.ok() && row_end_.ok() && sel_.ok() && nsel_.ok() && scores_.ok()));
  }
  check(cu::synchronize(stream()), "initialisation");
  return {};
}

cu::Weight CudaBackend::device(const Weight& w) {
  const WeightKey key{w.data, static_cast<uint32_t>(w.type), w.n_in, w.n_out};
  auto it = weights_.find(key);
  if (it == weights_.end()) {
    const size_t bytes = w.row_stride * static_cast<size_t>(w.n_out);
    cu::DeviceArray<uint8_t> d(w.data, bytes);
    if (!d.ok()) check(2, "weight upload (out of GPU memory)");
    it = weights_.emplace(key, std::move(d)).first;
  }
  return cu::Weight{w.type, it->second.get(), w.n_out, w.n_in, w.row_stride};
}

// ---- Row operations ---------------------------------------------------------------------------

// Small host arrays go up with cudaMemcpyAsync from pageable memory, which returns once the
// data is staged: the host buffer may go, and the stream is not waited for.
void CudaBackend::embed(const Weight& table, std::span<const TokenId> tokens, Tensor x) {
  if (ids_.size() < tokens.size()) ids_ = cu::DeviceArray<int32_t>(tokens.size());
  check(cu::copy_to_device(ids_.get(), tokens.data(), tokens.size() * sizeof(int32_t), stream()), "embed");
  check(cu::get_rows(device(table), ids_.get(), static_cast<int>(tokens.size()), x.data, x.stride, stream()), "embed");
}

void CudaBackend::rms_norm(Tensor x, const Weight& w, float eps, Tensor out, int n) {
  check(cu::rms_norm(x.data, x.stride, device_f32(w), out.data, out.stride, n, static_cast<int>(x.cols), eps, stream()),
        "rms_norm");
}

void CudaBackend::matmul(std::span<const MatJob> jobs, int n) {
  for (const MatJob& j : jobs) {
    const cu::Weight w = device(*j.w);
    // Decode batches read the weights once in the fused GEMV; larger ones go through cuBLAS.
    const int rc = n <= 8 && j.x.stride % 4 == 0
                       ? cu::gemv(w, j.x.data, j.x.stride, n, j.y.data, j.y.stride, stream())
                       : cu::gemm(*ctx_, w, j.x.data, j.x.stride, n, j.y.data, j.y.stride, cu::Half::kF16);
    check(rc, "matmul");
  }
}

void CudaBackend::add_bias(Tensor x, const Weight& b, int n) {
  check(cu::add_bias_rows(x.data, device_f32(b), n, static_cast<int>(x.cols), x.stride, stream()), "add_bias");
}

void CudaBackend::add(Tensor y, Tensor x, int n) {
  check(cu::add(y.data, y.stride, x.data, x.stride, n, static_cast<int>(y.cols), stream()), "add");
}

void CudaBackend::swiglu(Tensor gate, Tensor up, int n) {
  check(cu::swiglu(gate.data, gate.stride, up.data, up.stride, n, static_cast<int>(gate.cols), stream()), "swiglu");
}

void CudaBackend::rope(Tensor q, Tensor k, int n, int p0) {
  // Queries stay f32: the device attention multiplies in f32 (the CPU rounds them to f16).
  check(cu::rope_apply(q.data, n, c_.n_head, q.stride, c_.head_dim, positions(p0), rope_cos_.get(), rope_sin_.get(), c_.n_rot,
                       cfg_.rope.neox, stream()),
        "rope");
  check(cu::rope_apply(k.data, n, c_.n_head_kv, k.stride, c_.head_dim, positions(p0), rope_cos_.get(), rope_sin_.get(), c_.n_rot,
                       cfg_.rope.neox, stream()),
        "rope");
}

void CudaBackend::logits(const Weight& w, Tensor x, int n, float* host) {
  const size_t need = static_cast<size_t>(n) * static_cast<size_t>(w.n_out);
  if (logits_.size() < need) logits_ = cu::DeviceArray<float>(need);
  const MatJob job{&w, x, Tensor{logits_.get(), n, w.n_out, w.n_out}};
  matmul(std::span(&job, 1), n);
  check(cu::copy_to_host(host, logits_.get(), need * sizeof(float), stream()), "logits");
}

// ---- Caches and attention ---------------------------------------------------------------------

void CudaBackend::store_kv(int il, Tensor k, Tensor v, int n, int p0) {
  check(cu::kv_write(k.data, k.stride, v.data, v.stride, n, c_.n_head_kv, c_.head_dim, positions(p0),
                     k_cache_[static_cast<size_t>(il)].get(), v_cache_[static_cast<size_t>(il)].get(), kv_dim(), stream()),
        "store_kv");
}

void CudaBackend::store_index(int il, Tensor q, Tensor k, int n, int p0) {
  const Indexer& ix = *cfg_.indexer;
  cu::IndexStoreArgs a;
  a.n_tok = n;
  a.n_kv = c_.n_head_kv;
  a.n_head = c_.n_head;
  a.head_dim = c_.head_dim;
  a.rank = ix.rank();
  a.idx_heads = cfg_.idx_heads;
  a.per_head = cfg_.dsa.heads == IndexerHeads::kQuery;
  a.proj = proj_[static_cast<size_t>(il)].get();
  a.k = k.data;
  a.k_stride = k.stride;
  a.q = q.data;
  a.q_stride = q.stride;
  a.positions = positions(p0);
  a.cache = idx_cache_[static_cast<size_t>(il)].get();
  a.kscale = idx_scale_[static_cast<size_t>(il)].get();
  a.q8 = iq8_.get();
  a.qscale = iqs_.get();
  check(cu::index_store(a, stream()), "store_index");
}

void CudaBackend::selections_to_host(int n, int stride) {
  sel_stride_ = stride;
  sel_host_.resize(static_cast<size_t>(n) * stride);
  nsel_host_.resize(static_cast<size_t>(n));
  check(cu::copy_to_host(sel_host_.data(), sel_.get(), sel_host_.size() * sizeof(int32_t), stream()), "selection");
  check(cu::copy_to_host(nsel_host_.data(), nsel_.get(), nsel_host_.size() * sizeof(int32_t), stream()), "selection");
}

void CudaBackend::select(int il, int n, int p0) {
  const int K = cfg_.dsa.top_k, S = cfg_.dsa.sinks, W = cfg_.dsa.window;
  const Indexer& ix = *cfg_.indexer;
  const int64_t b0 = S / kernels::kIndexBlock * kernels::kIndexBlock;
  // Row t scores [b0, pos + 1 - W); rows still inside k take everything and score nothing.
  std::vector<int32_t> ends(static_cast<size_t>(n));
  for (int t = 0; t < n; ++t) ends[t] = p0 + t + 1 > K ? p0 + t + 1 - W : static_cast<int32_t>(b0);
  check(cu::copy_to_device(row_end_.get(), ends.data(), ends.size() * sizeof(int32_t), stream()), "select");
  const int64_t s1 = std::max<int64_t>(b0, *std::max_element(ends.begin(), ends.end()));
  const int64_t ld = std::max<int64_t>(1, s1 - b0);
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(n, static_cast<int64_t>(scores_.size()) / ld));
  for (int64_t t0 = 0; t0 < n; t0 += chunk) {
    const int rows = static_cast<int>(std::min<int64_t>(chunk, n - t0));
    if (s1 > b0) {
      cu::IndexScoresArgs a;
      a.n_rows = rows;
      a.n_heads = cfg_.idx_heads;
      a.head_dim = ix.rank();
      a.q = iq8_.get() + t0 * cfg_.idx_heads * ix.rank();
      a.qscale = iqs_.get() + t0 * cfg_.idx_heads;
      a.offset = iq_off_.get();
      a.combine = cfg_.dsa.combine;
      a.cache = idx_cache_[static_cast<size_t>(il)].get();
      a.kscale = idx_scale_[static_cast<size_t>(il)].get();
      a.dim = ix.key_dim();
      a.s0 = b0;
      a.s1 = s1;
      a.row_end = row_end_.get() + t0;
      a.out = scores_.get();
      a.ld = ld;
      check(cu::index_scores(a, stream()), "indexer scores");
    }
    check(cu::dsa_select(scores_.get(), ld, b0, positions(p0 + static_cast<int>(t0)), rows, K, S, W, sel_.get() + t0 * K,
                         nsel_.get() + t0, stream()),
          "top-k selection");
  }
  selections_to_host(n, K);
}

void CudaBackend::observe(int il, int pos, int k) {
  const Indexer& ix = *cfg_.indexer;
  if (static_cast<int64_t>(sel_.size()) < k) sel_ = cu::DeviceArray<int32_t>(static_cast<size_t>(k));
  cu::IndexScoresArgs a;
  a.n_rows = 1;
  a.n_heads = cfg_.idx_heads;
  a.head_dim = ix.rank();
  a.q = iq8_.get();
  a.qscale = iqs_.get();
  a.offset = iq_off_.get();
  a.combine = cfg_.dsa.combine;
  a.cache = idx_cache_[static_cast<size_t>(il)].get();
  a.kscale = idx_scale_[static_cast<size_t>(il)].get();
  a.dim = ix.key_dim();
  a.s0 = 0;
  a.s1 = pos + 1;
  a.out = scores_.get();
  a.ld = pos + 1;
  check(cu::index_scores(a, stream()), "indexer scores");
  check(cu::dsa_select(scores_.get(), pos + 1, 0, positions(pos), 1, k, 0, 0, sel_.get(), nsel_.get(), stream()),
        "top-k selection");
  selections_to_host(1, k);
}

void CudaBackend::attention(int il, Tensor q, Tensor out, int n, int p0, bool sparse) {
  cu::AttentionArgsGpu a;
  a.n_tok = n;
  a.n_head = c_.n_head;
  a.n_kv = c_.n_head_kv;
  a.head_dim = c_.head_dim;
  a.q = q.data;
  a.q_stride = q.stride;
  a.k = k_cache_[static_cast<size_t>(il)].get();
  a.v = v_cache_[static_cast<size_t>(il)].get();
  a.kv_stride = kv_dim();
  a.scale = 1.0f / std::sqrt(static_cast<float>(c_.head_dim));
  a.out = out.data;
  a.out_stride = out.stride;
  if (sparse) {
    a.positions = sel_.get();
    a.pos_stride = cfg_.dsa.top_k;
    a.n_keys = nsel_.get();
    a.max_keys = cfg_.dsa.top_k;
  } else {
    std::vector<int32_t> nk(static_cast<size_t>(n));
    std::iota(nk.begin(), nk.end(), p0 + 1);
    if (static_cast<int>(n_keys_.size()) < n) n_keys_ = cu::DeviceArray<int32_t>(static_cast<size_t>(n));
    check(cu::copy_to_device(n_keys_.get(), nk.data(), nk.size() * sizeof(int32_t), stream()), "attention");
    a.n_keys = n_keys_.get();
    a.max_keys = p0 + n;
  }
  check(cu::attention(*ctx_, a), "attention");
}

void CudaBackend::attention_mass(int il, Tensor qt, std::span<const int> rows, int p0, double* out) {
  // Diagnostics only: on the host, from copies of the queries and the layer's keys.
  if (rows.empty()) return;
  const int hd = c_.head_dim, group = c_.n_head / c_.n_head_kv;
  const int64_t kvd = kv_dim();
  const int last = p0 + *std::max_element(rows.begin(), rows.end());
  std::vector<uint16_t> keys(static_cast<size_t>(last + 1) * kvd);
  check(cu::copy_to_host(keys.data(), k_cache_[static_cast<size_t>(il)].get(), keys.size() * 2, stream()), "attention_mass");
  std::vector<float> q(static_cast<size_t>(qt.cols));
  for (size_t i = 0; i < rows.size(); ++i) {
    const int t = rows[i];
    check(cu::copy_to_host(q.data(), qt.data + t * qt.stride, q.size() * sizeof(float), stream()), "attention_mass");
    out[i] = selected_attention_mass(q.data(), c_.n_head, group, hd, p0 + t, selection(t),
                                     [&](int g, int s, int d) { return keys[s * kvd + g * hd + d]; });
  }
}

// ---- Cache contents in the CPU layouts --------------------------------------------------------

std::vector<uint16_t> CudaBackend::blocked_keys(int il, int head) const {
  const int hd = c_.head_dim;
  std::vector<uint16_t> tok(static_cast<size_t>(cfg_.n_ctx) * kv_dim());
  check(cu::copy_to_host(tok.data(), k_cache_[static_cast<size_t>(il)].get(), tok.size() * 2, stream()), "cache read");
  std::vector<uint16_t> blocked(static_cast<size_t>(k_head_stride()), 0);
  for (int64_t p = 0; p < cfg_.n_ctx; ++p)
    for (int d = 0; d < hd; ++d) blocked[kernels::k_offset(p, d, hd)] = tok[p * kv_dim() + head * hd + d];
  return blocked;
}

void CudaBackend::cache_read(int il, CachePart part, int head, uint64_t offset, void* dst, uint64_t bytes) const {
  const auto L = static_cast<size_t>(il);
  switch (part) {
    case CachePart::kKeys: {
      const std::vector<uint16_t> b = blocked_keys(il, head);
      std::memcpy(dst, reinterpret_cast<const uint8_t*>(b.data()) + offset, bytes);
      return;
    }
    case CachePart::kValues:  // token-major = the CPU's row-major V
      check(cu::copy_to_host(dst, reinterpret_cast<const uint8_t*>(v_cache_[L].get()) + offset, bytes, stream()), "cache read");
      return;
    case CachePart::kIndexKeys:
      check(cu::copy_to_host(dst, idx_cache_[L].get() + offset, bytes, stream()), "cache read");
      return;
    case CachePart::kIndexScales:
      check(cu::copy_to_host(dst, reinterpret_cast<const uint8_t*>(idx_scale_[L].get()) + offset, bytes, stream()), "cache read");
      return;
  }
}

void CudaBackend::cache_write(int il, CachePart part, int head, uint64_t offset, const void* src, uint64_t bytes) {
  const auto L = static_cast<size_t>(il);
  uint8_t* dst = nullptr;
  switch (part) {
    case CachePart::kKeys: {
      // Through the blocked layout: read, patch, scatter back into token-major rows.
      std::vector<uint16_t> b = blocked_keys(il, head);
      std::memcpy(reinterpret_cast<uint8_t*>(b.data()) + offset, src, bytes);
      const int hd = c_.head_dim;
      std::vector<uint16_t> tok(static_cast<size_t>(cfg_.n_ctx) * kv_dim());
      check(cu::copy_to_host(tok.data(), k_cache_[L].get(), tok.size() * 2, stream()), "cache write");
      for (int64_t p = 0; p < cfg_.n_ctx; ++p)
        for (int d = 0; d < hd; ++d) tok[p * kv_dim() + head * hd + d] = b[kernels::k_offset(p, d, hd)];
      check(cu::copy_to_device(k_cache_[L].get(), tok.data(), tok.size() * 2, stream()), "cache write");
      check(cu::synchronize(stream()), "cache write");
      return;
    }
    case CachePart::kValues:
      dst = reinterpret_cast<uint8_t*>(v_cache_[L].get());
      break;
    case CachePart::kIndexKeys:
      dst = idx_cache_[L].get();
      break;
    case CachePart::kIndexScales:
      dst = reinterpret_cast<uint8_t*>(idx_scale_[L].get());
      break;
  }
  check(cu::copy_to_device(dst + offset, src, bytes, stream()), "cache write");
  check(cu::synchronize(stream()), "cache write");
}

}  // namespace

bool cuda_available(std::string* why) {
  return cu::device_count(why) > 0;
}

Result<std::unique_ptr<Backend>> make_cuda_backend(const ModelConfig& c, const BackendConfig& cfg) {
  std::string why;
  if (!cuda_available(&why)) return make_error(ErrorCode::kUnsupported, "--device cuda: " + why);
  std::unique_ptr<CudaBackend> b(new CudaBackend(c, cfg));
  TRY_STATUS(b->init());
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace docdsa
