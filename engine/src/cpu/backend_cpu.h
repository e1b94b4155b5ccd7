// The CPU backend: the kernels of kernels/cpu on the thread pool, over host buffers.
// One file per concept: backend_cpu.cpp (buffers, row operations, cache writes, logits),
// matmul.cpp (the one place a weight's type picks its kernel), attention.cpp (dense and
// sparse attention over the KV cache), dsa_select.cpp (indexer keys and queries, top-k
// selection and the per-block unions).
#pragma once

#include <deque>
#include <vector>

#include "docdsa/engine/backend.h"
#include "docdsa/engine/thread_pool.h"
#include "docdsa/kernels/huge_pages.h"

namespace docdsa {

class CpuBackend final : public Backend {
 public:
  CpuBackend(const ModelConfig& c, const BackendConfig& cfg);
  // Allocates the caches and scratch (kOutOfRange when memory runs out).
  Status init();

  const char* name() const override { return "cpu"; }
  int n_threads() const override { return pool_.size(); }
  // Repacks the model's packable weights into the GEMM layout (matmul.cpp), once per model.
  Status prepare(const Model& m) override;

  Tensor alloc(int rows, int64_t cols) override;
  void upload(Tensor t, int n, const float* host) override;
  void download(Tensor t, int n, float* host) override;
  uint64_t kv_bytes() const override;
  uint64_t indexer_bytes() const override;

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
  std::span<const int32_t> selection(int t) const override { return sel_[static_cast<size_t>(t)]; }
  void observe(int il, int pos, int k) override;
  void attention(int il, Tensor q, Tensor out, int n, int p0, bool sparse) override;
  void attention_mass(int il, Tensor q, std::span<const int> rows, int p0, double* out) override;

  void cache_read(int il, CachePart part, int head, uint64_t offset, void* dst, uint64_t bytes) const override;
  void cache_write(int il, CachePart part, int head, uint64_t offset, const void* src, uint64_t bytes) override;
  int64_t k_head_stride() const override;

 private:
  // Sparse: a block of query tokens shares one gathered union of their selections (keys and
  // values gathered once), each token computing only on its own entries (kernels/attention.h,
  // attention_sparse).
  static constexpr int kSparseQueryTokens = 16;
  // A block of query tokens sharing one gathered union of their selections (sparse prefill).
  struct QueryBlock {
    std::vector<int32_t> keys;    // union of the block's selections, ascending
    std::vector<uint32_t> mask;   // [tokens][words]: bit j, the token's selection holds keys[j]
    std::vector<int32_t> shift;   // context extension: RoPE shift per union entry
    int words = 0;
  };
  void build_union(QueryBlock& qb, int t0, int nt, int p0);
  // Sparse attention of the query blocks from first_block on (attention.cpp).
  void attention_sparse(int il, Tensor q, Tensor out, int n, int first_block);
  void merge_splits(int base_tasks, int n_split, int n_tblk, int first_block, int qtok, int n, float* dst, int64_t dst_stride);
  uint8_t* cache_part(int il, CachePart part, int head) const;
  // DSA: refreshes the row-major K copy from the blocked K cache for the positions a
  // cache_write of [offset, offset + bytes) into head's blocked keys touched.
  void sync_key_rows(int il, int head, uint64_t offset, uint64_t bytes);

  ModelConfig c_;
  BackendConfig cfg_;
  ThreadPool pool_;
  std::deque<std::vector<float>> tensors_;      // what alloc() handed out
  std::vector<kernels::HugeVector<uint16_t>> k_cache_;  // [layer][n_head_kv][blocked K] f16 (kernels/attention.h)
  std::vector<kernels::HugeVector<uint16_t>> v_cache_;  // [layer][n_ctx * kv_dim] f16
  std::vector<kernels::HugeVector<uint16_t>> kr_cache_;  // DSA: [layer][n_ctx * kv_dim] f16, K row-major for gathers
  std::vector<uint8_t> act_;                    // activations quantised for the matmuls
  std::vector<uint8_t> aux_;                    // their block sums for the packed kernels
  // matmul()'s per-call lists (cpu/matmul.cpp), kept so a call allocates nothing: one quantised
  // copy per distinct (input, vec-dot type), block sums per (copy, packed weight type) (Q/K/V and
  // gate/up share them), each job's indices into both, and the row chunks of all jobs.
  struct MatQuantised {
    const float* x;
    int64_t x_stride, n_in;
    kernels::DType type;
    size_t offset, stride;
  };
  struct MatSums {
    size_t q;
    kernels::DType wtype;
    size_t offset;
  };
  struct MatChunk {
    const MatJob* job;
    const MatQuantised* q;
    const void* pw;  // the kernels::PackedWeight, or null
    const uint8_t* aux;
    int64_t r0, r1;
  };
  std::vector<MatQuantised> mm_qs_;
  std::vector<MatSums> mm_sums_;
  std::vector<size_t> mm_job_q_, mm_job_sums_;
  std::vector<MatChunk> mm_chunks_;
  std::vector<float> attn_part_, attn_lse_;     // split-K partial results
  // DSA: indexer cache per layer (kernels/indexer.h layout) and key scales, the batch's
  // indexer queries, selections and per-query-block unions with token masks.
  std::vector<kernels::HugeVector<uint8_t>> idx_cache_;
  std::vector<std::vector<float>> idx_scale_;
  std::vector<int8_t> iq8_;
  std::vector<float> iqs_;
  std::vector<int32_t> iq_off_;
  std::vector<std::vector<int32_t>> sel_;
  std::vector<QueryBlock> qblocks_;
  std::vector<float> score_buf_;          // decode: scores of one query over all keys
  kernels::HugeVector<float> rot_cos_, rot_sin_;  // context extension: [shift][n_rot/2], read at random shifts
};

}  // namespace docdsa
