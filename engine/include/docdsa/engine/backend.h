// The seam between the forward pass and the hardware that runs it. The forward pass
// (engine/src/models/llama.cpp) is a sequence of whole-batch operations on a Backend; the
// backend owns every buffer those operations touch — activations, the KV cache, the indexer
// cache, scratch — and the layouts of its caches are its own business. The CPU backend
// (engine/src/cpu/) runs today's kernels on the thread pool; a CUDA backend implements the
// same operations on device memory.
//
// Handles, not pointers: a Tensor's memory belongs to the backend (host memory on the CPU,
// device memory on a GPU). The forward pass only passes handles from one operation to the
// next; download() and upload() copy rows across for observers and for the op-level tests
// (tests/engine/backend_test.cpp compares every operation with a plain reference).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "docdsa/engine/dsa.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/result.h"
#include "docdsa/kernels/ops.h"

namespace docdsa {

// A backend-owned f32 matrix: `rows` rows of `cols` values, `stride` elements apart.
struct Tensor {
  float* data = nullptr;  // backend memory: never dereferenced outside the backend
  int rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;
  // The rows from r on (a view; device pointers offset the same way).
  Tensor from_row(int r) const { return {data + static_cast<int64_t>(r) * stride, rows - r, cols, stride}; }
};

// One matrix product of a batch: y[t, :] = W x[t, :] for the first n rows of x.
struct MatJob {
  const Weight* w;
  Tensor x;  // [n, w->n_in]
  Tensor y;  // [n, w->n_out]
};

// What a backend is built for: the model's shape, the cache capacity and the attention setup.
struct BackendConfig {
  int n_ctx = 0;                 // KV (and indexer) cache capacity in tokens
  int n_batch = 0;               // most tokens one operation sees
  int n_threads = 0;             // CPU: worker threads (0: all cores)
  bool exact_attention = false;  // CPU: llama.cpp-compatible attention arithmetic
  kernels::RopeParams rope;      // with the model's pairing layout (rope.neox)
  // DSA: an indexer cache is kept when `indexer` is set; `dsa` says how selections are made.
  const Indexer* indexer = nullptr;
  DsaParams dsa;
  int idx_heads = 0;  // indexer query heads: n_head (IndexerHeads::kQuery) or n_head_kv
  // Context extension (Session::extend_group): gathered keys farther than ext_window from
  // the query are re-rotated so that distance d reads as ext_window + (d - ext_window) / G.
  int ext_group = 0, ext_window = 0;
  uint64_t weight_bytes = 0;  // the model's weights, for a device backend's memory check
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual int n_threads() const = 0;
  // Called by Session::create before any operation, with the model whose weights the
  // operations read: a backend makes its own forms of them here (the CPU repacks them once
  // per model, Model::prepare_weights). Weights never prepared still work from their rows.
  virtual Status prepare(const Model&) { return {}; }

  // ---- Buffers ------------------------------------------------------------------------------
  // A zeroed [rows, cols] f32 tensor, owned by the backend and valid as long as it.
  virtual Tensor alloc(int rows, int64_t cols) = 0;
  // Copies the first n rows between host memory ([n, t.cols], packed) and a tensor.
  virtual void upload(Tensor t, int n, const float* host) = 0;
  virtual void download(Tensor t, int n, float* host) = 0;
  // Bytes held by the caches.
  virtual uint64_t kv_bytes() const = 0;
  virtual uint64_t indexer_bytes() const = 0;

  // ---- Row operations, each over the first n rows -------------------------------------------
  // x[t, :] = row tokens[t] of the embedding table (any weight type).
  virtual void embed(const Weight& table, std::span<const TokenId> tokens, Tensor x) = 0;
  // out[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * w
  virtual void rms_norm(Tensor x, const Weight& w, float eps, Tensor out, int n) = 0;
  // Every job's product, as one parallel section (jobs reading the same x share its
  // quantised copy). The one place a weight's type picks its kernel.
  virtual void matmul(std::span<const MatJob> jobs, int n) = 0;
  virtual void add_bias(Tensor x, const Weight& b, int n) = 0;  // x[t, :] += b
  virtual void add(Tensor y, Tensor x, int n) = 0;              // y += x
  virtual void swiglu(Tensor gate, Tensor up, int n) = 0;       // gate = silu(gate) * up
  // Rotary embedding of the heads of q [n, n_head * head_dim] and k [n, n_head_kv * head_dim]
  // at positions p0.. (scaling as in BackendConfig::rope). Queries come out in the precision
  // attention multiplies them in (the CPU rounds them to f16, as llama.cpp's f16 K.Q does).
  virtual void rope(Tensor q, Tensor k, int n, int p0) = 0;
  // The vocabulary projection of x's n rows into host memory [n, w.n_out]: only logits cross.
  virtual void logits(const Weight& w, Tensor x, int n, float* host) = 0;

  // ---- Caches and attention -----------------------------------------------------------------
  // Keys and values of positions p0.. of layer il into the KV cache.
  virtual void store_kv(int il, Tensor k, Tensor v, int n, int p0) = 0;
  // DSA: indexer keys of positions p0.. into the indexer cache, and the batch's indexer
  // queries (from q) for select() and observe().
  virtual void store_index(int il, Tensor q, Tensor k, int n, int p0) = 0;
  // DSA: per query token t < n (position p0 + t), the top-k positions by indexer score plus
  // the sinks and the window (everything when the position is < k), for attention(sparse).
  virtual void select(int il, int n, int p0) = 0;
  // The positions token t's sparse attention reads (ascending), after select() or observe().
  virtual std::span<const int32_t> selection(int t) const = 0;
  // The k positions the indexer ranks highest for the single query at pos (diagnostics when
  // attention is dense); read with selection(0).
  virtual void observe(int il, int pos, int k) = 0;
  // Causal attention of q's n rows (positions p0..) over layer il's cache into out: dense,
  // or over each token's selection when sparse.
  virtual void attention(int il, Tensor q, Tensor out, int n, int p0, bool sparse) = 0;
  // Diagnostics: for each of `rows`, the share of its dense attention mass (over all keys,
  // averaged over heads) that selection(row) holds.
  virtual void attention_mass(int il, Tensor q, std::span<const int> rows, int p0, double* out) = 0;

  // ---- Cache contents (saving and loading a session: session_state.cpp) --------------------
  // Raw bytes of one layer's cache part, in the CPU layouts (kernels/attention.h: K blocked
  // per KV head, V row-major; kernels/indexer.h: indexer keys and their float scales), which
  // every backend reads and writes so that saved states move between them. `head` selects
  // the KV head for kKeys; offset and bytes are within that part.
  enum class CachePart { kKeys, kValues, kIndexKeys, kIndexScales };
  virtual void cache_read(int il, CachePart part, int head, uint64_t offset, void* dst, uint64_t bytes) const = 0;
  virtual void cache_write(int il, CachePart part, int head, uint64_t offset, const void* src, uint64_t bytes) = 0;
  // Elements of one KV head's K cache (its blocked layout, sized to n_ctx).
  virtual int64_t k_head_stride() const = 0;
};

// The CPU backend (engine/src/cpu/): the kernels of kernels/cpu on a thread pool.
Result<std::unique_ptr<Backend>> make_cpu_backend(const ModelConfig& c, const BackendConfig& cfg);

// Builds a backend (SessionParams::backend). Another backend (CUDA: docdsa/engine/backend_cuda.h)
// comes in as a factory so that the engine never links what it does not need.
using BackendFactory = std::function<Result<std::unique_ptr<Backend>>(const ModelConfig&, const BackendConfig&)>;

}  // namespace docdsa
