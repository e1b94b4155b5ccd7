// CUDA kernels of the forward pass and of DSA, callable from plain C++ (no CUDA headers needed).
//
// Every launcher takes device pointers and a stream, queues its work and returns at once; the
// returned code is a cudaError_t value (0: queued fine). Shapes use the same conventions as the
// CPU kernels in kernels/include/docdsa/kernels/ (ops.h, quant.h, indexer.h, attention.h), which
// are their reference: the tests in tests/kernels/cuda_*_test.cpp compare each op to them.
//
// Device layouts that differ from the CPU ones (chosen for coalesced GPU loads):
// - KV cache: token-major f16, K and V alike: element (pos, kv head g, d) at
//   cache[pos * kv_stride + g * head_dim + d]. A gathered (sparse) key is one contiguous row,
//   where the CPU's blocked K layout would read 16x the bytes for scattered positions.
// - Indexer cache: the CPU layout (indexer.h, blocks of 16 tokens, biased uint8), unchanged:
//   16 consecutive tokens' same word already form one coalesced 64-byte load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "docdsa/kernels/indexer.h"
#include "docdsa/kernels/ops.h"
#include "docdsa/kernels/quant.h"

struct CUstream_st;

namespace docdsa::kernels::cuda {

using Stream = CUstream_st*;  // cudaStream_t; nullptr is the legacy default stream

// Number of usable CUDA devices; 0 with `why` set when the driver or a device is missing.
int device_count(std::string* why = nullptr);
// Name and total memory of device 0 (empty / 0 when none).
std::string device_name();
size_t device_memory_bytes();
size_t device_free_bytes();  // free memory of the current device now
const char* error_string(int code);

// Device memory (cudaMalloc/cudaFree/cudaMemcpyAsync); copies are ordered on `s`.
void* device_alloc(size_t bytes);  // nullptr on failure
void device_free(void* p);
int copy_to_device(void* dst, const void* src, size_t bytes, Stream s = nullptr);
int copy_to_host(void* dst, const void* src, size_t bytes, Stream s = nullptr);
int memset_device(void* dst, int value, size_t bytes, Stream s = nullptr);
int synchronize(Stream s = nullptr);

// Owning device array of T (move-only).
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) : n_(n), p_(static_cast<T*>(device_alloc(n * sizeof(T)))) {}
  DeviceArray(const T* host, size_t n) : DeviceArray(n) { copy_to_device(p_, host, n * sizeof(T)); }
  DeviceArray(DeviceArray&& o) noexcept : n_(o.n_), p_(o.p_) { o.n_ = 0, o.p_ = nullptr; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(n_, o.n_);
    std::swap(p_, o.p_);
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { device_free(p_); }
  T* get() const { return p_; }
  size_t size() const { return n_; }
  bool ok() const { return p_ != nullptr || n_ == 0; }
  int download(T* host, size_t n) const { return copy_to_host(host, p_, n * sizeof(T)); }

 private:
  size_t n_ = 0;
  T* p_ = nullptr;
};

// Per-stream state: the cuBLAS handle and grow-only scratch buffers (FP16 tiles for the
// prefill GEMM, partial results of split attention). One Context per stream; not thread-safe.
class Context {
 public:
  static std::unique_ptr<Context> create(Stream s, std::string* why = nullptr);
  ~Context();
  Stream stream() const;
  void* scratch(int slot, size_t bytes);  // nullptr when out of memory; contents undefined
  void* blas() const;                     // cublasHandle_t
  int sm_count() const;

  struct Impl;

 private:
  explicit Context(Impl* impl) : impl_(impl) {}
  Impl* impl_;
};

// ---- Matrix products (weights stay in their file type) ----------------------------------------

// Quantised weight matrix on the device: rows of `cols` elements, row r at data + r * row_stride
// bytes. cols must be a multiple of the type's block size (32 or 256). Types: F32, F16, BF16,
// Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K.
struct Weight {
  DType type = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_stride = 0;
};
bool gemv_supported(DType t);

// Decode: y[t * ldy + r] = W[r] . x[t * ldx ..] for t < n_tok (1..8), dequantising in registers
// (one warp per row; the weights are read once for all n_tok rows).
int gemv(const Weight& w, const float* x, int64_t ldx, int n_tok, float* y, int64_t ldy, Stream s);

// Dequantises rows [r0, r0 + n) of W into dst (n x cols, row-major) as f16 or bf16.
enum class Half { kF16, kBF16 };
int dequantize(const Weight& w, int64_t r0, int64_t n, void* dst, Half h, Stream s);

// Prefill: y[t * ldy + r] = W[r] . x[t * ldx ..] for any n_tok: W dequantised to 16-bit in
// tiles, x converted once, cuBLAS GEMM with f32 accumulation. For n_tok <= 8 use gemv.
int gemm(Context& ctx, const Weight& w, const float* x, int64_t ldx, int n_tok, float* y, int64_t ldy, Half h);

// Embedding rows: out[i * ld ..] = dequant(table row ids[i]) for i < n.
int get_rows(const Weight& table, const int32_t* ids, int n, float* out, int64_t ld, Stream s);

// ---- Row and element-wise ops (CPU reference: ops.h) -------------------------------------------

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w for `rows` rows of n (y may be x).
int rms_norm(const float* x, int64_t x_stride, const float* w, float* y, int64_t y_stride, int rows, int n, float eps, Stream s);

// cos/sin tables [n_pos][n_rot / 2] for positions 0..n_pos-1, the same arithmetic as
// kernels::rope_cache (repeated multiplication, YaRN ramp and magnitude).
int rope_table(const RopeParams& p, int n_pos, float* cos_out, float* sin_out, Stream s);
// Rotates n_heads head vectors of each of n_tok tokens (x + t * tok_stride + h * head_stride)
// by the table rows of positions[t].
int rope_apply(float* x, int n_tok, int n_heads, int64_t tok_stride, int64_t head_stride, const int32_t* positions,
               const float* cos_t, const float* sin_t, int n_rot, bool neox, Stream s);

// Over `rows` rows of n: gate = silu(gate) * up; y += x.
int swiglu(float* gate, int64_t gate_stride, const float* up, int64_t up_stride, int rows, int n, Stream s);
int add(float* y, int64_t y_stride, const float* x, int64_t x_stride, int rows, int n, Stream s);
int add_bias_rows(float* y, const float* b, int rows, int n, int64_t stride, Stream s);

// Writes n_tok tokens' K and V (f32, k[t * k_stride + g * head_dim + d]) into the f16 caches at
// positions[t] (layout above).
int kv_write(const float* k, int64_t k_stride, const float* v, int64_t v_stride, int n_tok, int n_kv, int head_dim,
             const int32_t* positions, uint16_t* k_cache, uint16_t* v_cache, int64_t kv_stride, Stream s);

// out[0] = index of the largest of logits[0..n) (the first one on ties, as the CPU sampler).
int argmax(const float* logits, int n, int32_t* out, Stream s);

// ---- DSA: the indexer cache, lightning-indexer scores and top-k selection ---------------------

// Indexer keys and queries of n_tok tokens (engine/src/cpu/dsa_select.cpp store_index, with the
// same summation order and rounding, so the int8 values match the CPU's): key of token t =
// concat_g P[g] k_g (P: [n_kv][rank][head_dim] f32), quantised into `cache` at position
// positions[t] (kernels::index_store_key) with its scale in kscale; query of indexer head h =
// P[g(h)] q_h (per_head: g = h / group; else h, with q_h the sum of group g's heads), quantised
// with one scale for all heads into q8 [t][h][rank] and qscale [t][h] (kernels::index_quantize_query).
struct IndexStoreArgs {
  int n_tok = 0;
  int n_kv = 0, n_head = 0, head_dim = 0, rank = 0;
  int idx_heads = 0;
  bool per_head = true;
  const float* proj = nullptr;
  const float* k = nullptr;
  int64_t k_stride = 0;
  const float* q = nullptr;
  int64_t q_stride = 0;
  const int32_t* positions = nullptr;
  uint8_t* cache = nullptr;
  float* kscale = nullptr;
  int8_t* q8 = nullptr;
  float* qscale = nullptr;
};
int index_store(const IndexStoreArgs& a, Stream s);

// ---- DSA: lightning-indexer scores and top-k selection (CPU reference: indexer.h, dsa.h) ------

// Scores of n_rows queries against keys [s0, s1) of one layer's indexer cache, one int8 dp4a
// product per (query, key, head): out[i * ld + (s - s0)] = I(query i, s) for s < row_end[i]
// (row_end null: s1); entries past a row's end are -inf. q [n_rows][n_heads][head_dim] int8,
// qscale [n_rows][n_heads], offset [n_heads] (device). s0 a multiple of kIndexBlock.
struct IndexScoresArgs {
  int n_rows = 0;
  int n_heads = 0;
  int head_dim = 0;
  const int8_t* q = nullptr;
  const float* qscale = nullptr;
  const int32_t* offset = nullptr;
  IndexCombine combine = IndexCombine::kMax;
  const uint8_t* cache = nullptr;
  const float* kscale = nullptr;
  int dim = 0;
  int64_t s0 = 0, s1 = 0;
  const int32_t* row_end = nullptr;
  float* out = nullptr;
  int64_t ld = 0;
};
int index_scores(const IndexScoresArgs& a, Stream s);

// DSA selection of row i (query position pos[i]), as engine/src/attention.cpp `choose`:
// all of 0..pos when pos + 1 <= top_k, else the sinks [0, S), the top (top_k - S - W) of the
// scores of [S, pos + 1 - W) by (score, index) descending (ties to the later index), and the
// window [pos + 1 - W, pos]. scores[i * ld + (s - base)] holds position s's score. Writes the
// positions ascending to sel[i * top_k ..] and their number to n_sel[i]. Radix select: four
// 8-bit passes over the order-preserving key, one block per row. sinks 0 and window 0 give a
// plain top-k over [0, pos] (kernels::select_topk).
int dsa_select(const float* scores, int64_t ld, int64_t base, const int32_t* pos, int n_rows, int top_k, int sinks, int window,
               int32_t* sel, int32_t* n_sel, Stream s);

// ---- Attention (CPU reference: attention.h, attention_ref) -------------------------------------

// Exact softmax attention of n_tok query tokens, each with n_head heads (GQA: head h reads KV
// head h / (n_head / n_kv)). Token t attends the first n_keys[t] entries of its key list:
// positions + t * pos_stride (sparse, token-level: each token its own gathered list, e.g.
// dsa_select's output) or 0..n_keys[t]-1 when positions is null (dense, flash-style).
// q[t * q_stride + h * head_dim + d], out[t * out_stride + h * head_dim + d]. Long lists are
// split over blocks (flash-decoding) and merged by log-sum-exp. head_dim 16, 32, 64 or 128.
struct AttentionArgsGpu {
  int n_tok = 0;
  int n_head = 0;
  int n_kv = 0;
  int head_dim = 0;
  const float* q = nullptr;
  int64_t q_stride = 0;
  const int32_t* n_keys = nullptr;
  const int32_t* positions = nullptr;
  int64_t pos_stride = 0;
  const uint16_t* k = nullptr;
  const uint16_t* v = nullptr;
  int64_t kv_stride = 0;
  float scale = 1.0f;
  float* out = nullptr;
  int64_t out_stride = 0;
  int max_keys = 0;  // upper bound of n_keys (sizes the split); 0: assume 1 split
};
int attention(Context& ctx, const AttentionArgsGpu& a);

}  // namespace docdsa::kernels::cuda
