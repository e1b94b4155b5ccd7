// Exact softmax attention of query rows over f16 keys/values of one KV head.
//
// Rows share one list of key positions; row i attends to the first n_keys[i] entries of it
// (causal prefill: n_keys = position + 1). With `positions` null the keys are 0..n-1 of the
// cache (dense); with a list they are gathered from the cache (sparse: the DSA selection),
// never masked out of a dense score matrix.
//
// Cache layouts (f16): K is stored in blocks of kKeyBlock positions, dimension-major inside a
// block, so a block's keys load as head_dim vectors without a transpose: element (pos, d) is
// at k[(pos / kKeyBlock) * head_dim * kKeyBlock + d * kKeyBlock + pos % kKeyBlock]. V is
// row-major: element (pos, d) at v[pos * v_stride + d].
//
// Masks: rows may each attend to a subset of the list (bit masks), for query blocks sharing
// one gathered union of sparse selections.
//
// Split-K: a call may cover only entries [key_begin, key_end) of the list; with `lse` set it
// also writes each row's log-sum-exp, so partial results over disjoint ranges can be merged
// (merge_partials) — decode uses this to spread one head's keys over all threads.
#pragma once

#include <climits>
#include <cstdint>

#include "docdsa/kernels/quant.h"

namespace docdsa::kernels {

constexpr int kKeyBlock = 16;

// Offset of (pos, d) in one head's blocked K cache.
inline int64_t k_offset(int64_t pos, int d, int head_dim) {
  return (pos / kKeyBlock) * head_dim * kKeyBlock + static_cast<int64_t>(d) * kKeyBlock + pos % kKeyBlock;
}

struct AttentionArgs {
  int head_dim = 0;              // d (multiple of 16)
  int n_rows = 0;                // query rows
  const float* q = nullptr;      // [n_rows, q_stride] f32
  int64_t q_stride = 0;
  const int32_t* n_keys = nullptr;  // [n_rows] keys visible to each row (>= 1)
  const int32_t* positions = nullptr;  // [max n_keys] cache positions, or null for 0..n-1
  const uint16_t* k = nullptr;   // this head's blocked f16 K cache (layout above)
  const uint16_t* v = nullptr;   // this head's first V element; rows v_stride apart
  int64_t v_stride = 0;
  float scale = 1.0f;            // applied to q.k
  int32_t key_begin = 0;         // first list entry to attend (multiple of kKeyBlock)
  int32_t key_end = INT32_MAX;   // one past the last (clipped to n_keys[i])
  float* out = nullptr;          // [n_rows, out_stride]; zero for rows with no keys in range
  int64_t out_stride = 0;
  float* lse = nullptr;          // optional [n_rows]: log-sum-exp of scores (-inf: none)
  // Optional per-row subsets of the list (sparse prefill: a block of query tokens shares the
  // union of their selections): bit j of row i's words says whether entry j is attended.
  const uint32_t* mask = nullptr;  // [n_rows][mask_stride]
  int64_t mask_stride = 0;
  // Optional RoPE re-positioning of gathered keys (context extension): list entry j's key is
  // rotated forward by key_shift[j] positions, with rot_cos/rot_sin[shift * rot_pairs + i] the
  // rotation of dimension pair i (pairs (2i, 2i+1), or (i, i + rot_pairs) with rot_neox).
  const int32_t* key_shift = nullptr;
  const float* rot_cos = nullptr;
  const float* rot_sin = nullptr;
  int rot_pairs = 0;
  bool rot_neox = false;
};

inline bool mask_bit(const AttentionArgs& a, int row, int j) {
  return a.mask == nullptr || ((a.mask[row * a.mask_stride + j / 32] >> (j % 32)) & 1u) != 0;
}

// Merges n_parts partial results (outs[p] rows with lses[p]) into out. Rows are head_dim wide.
void merge_partials(int n_parts, const float* const* outs, const float* const* lses, int n_rows,
                    int head_dim, int64_t stride, float* out, int64_t out_stride);

void attention(const AttentionArgs& args, Isa isa);

// Sparse (DSA) attention of a block of query tokens over one gathered list of key positions,
// with the work per token near its own selection: the list's keys and values are gathered
// once per chunk from a row-major K copy (contiguous per token, rotated when re-positioned)
// and shared by every token and head of the block; each token's QK runs only on 16-entry
// tiles holding one of its entries, its softmax and PV only on its own entries. The heads of
// a token (one KV group) share its selection, so a token's mask is read once for them all.
struct SparseAttentionArgs {
  int head_dim = 0;   // d: multiple of 16, <= 128 (SIMD; the reference takes any up to 256)
  int n_heads = 0;    // query heads per token (the KV group), sharing the token's selection
  int n_tokens = 0;
  const float* q = nullptr;  // token t, head h at q + t * q_stride + h * head_dim
  int64_t q_stride = 0;
  int32_t n_entries = 0;
  const int32_t* positions = nullptr;  // [n_entries] cache positions of the list
  const uint32_t* mask = nullptr;      // [n_tokens][mask_stride]: bit j, token reads entry j; null: all
  int64_t mask_stride = 0;
  const uint16_t* k = nullptr;  // row-major f16 keys of this head: (pos, d) at k[pos * k_stride + d]
  int64_t k_stride = 0;
  const uint16_t* v = nullptr;  // row-major f16 values of this head: (pos, d) at v[pos * v_stride + d]
  int64_t v_stride = 0;
  float scale = 1.0f;
  int32_t entry_begin = 0;        // split-K: first entry (any; the CPU backend's splits are multiples of 16)
  int32_t entry_end = INT32_MAX;  // one past the last
  float* out = nullptr;  // token t, head h at out + t * out_stride + h * head_dim (zero: no entries)
  int64_t out_stride = 0;
  float* lse = nullptr;  // optional [n_tokens * n_heads]: log-sum-exp (-inf: no entries)
  // Optional re-positioning (context extension), as in AttentionArgs: entry j's key rotated
  // forward by key_shift[j] positions.
  const int32_t* key_shift = nullptr;
  const float* rot_cos = nullptr;
  const float* rot_sin = nullptr;
  int rot_pairs = 0;
  bool rot_neox = false;
};
void attention_sparse(const SparseAttentionArgs& args, Isa isa);
inline void attention_sparse(const SparseAttentionArgs& args) { attention_sparse(args, active_isa()); }
// llama.cpp-compatible attention (AVX-512 CPUs only; see attention_compat.cpp): same results,
// bit for bit, as llama.cpp's CPU flash attention. For oracle tests and --exact runs.
bool attention_compat_supported();
void attention_compat(const AttentionArgs& args);
inline void attention(const AttentionArgs& args) { attention(args, active_isa()); }

}  // namespace docdsa::kernels
