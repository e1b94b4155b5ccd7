// Lightning-indexer kernels for sparse attention (DSA): int8 scoring of every earlier token
// and top-k selection.
//
// Indexer cache (one per layer): each token has one int8 key of `dim` values (dim a multiple
// of 4) and one float scale. Keys are stored biased by +128 (as uint8) in blocks of
// kIndexBlock tokens, four dimensions per 32-bit word, word-major inside a block, so one
// 64-byte load holds the same word of 16 keys — the layout VNNI's u8 x s8 dot wants:
// byte (pos, i) is at block(pos) * dim * 16 + (i / 4) * 64 + (pos % 16) * 4 + i % 4.
//
// Scores: I(t, s) = kscale[s] * combine_h( qscale[h] * (q[h] . k(s)) ), where head h reads the
// key's dims [h_off, h_off + h_dim) and combine is Σ ReLU (DeepSeek's indexer) or max.
#pragma once

#include <cstdint>
#include <vector>

#include "docdsa/kernels/quant.h"

namespace docdsa::kernels {

constexpr int kIndexBlock = 16;

inline int64_t index_offset(int64_t pos, int i, int dim) {
  return (pos / kIndexBlock) * dim * kIndexBlock + (i / 4) * 64 + (pos % kIndexBlock) * 4 + i % 4;
}

// Quantises one token's indexer key (dim floats) into the cache; returns its scale.
float index_store_key(const float* key, int dim, uint8_t* cache, int64_t pos);

enum class IndexCombine { kReluSum, kMax };

struct IndexQuery {
  int n_heads = 0;
  int head_dim = 0;               // r: dims per head (multiple of 4)
  const int8_t* q = nullptr;      // [n_heads][head_dim]
  const float* qscale = nullptr;  // [n_heads] dequantisation scale x head weight
  const int32_t* offset = nullptr;  // [n_heads] first key dim the head reads (multiple of 4)
  IndexCombine combine = IndexCombine::kReluSum;
};

// Quantises per-head float queries [n_heads][head_dim] into q/qscale (scale * weight[h]), one
// scale for all heads (their largest magnitude sets it): without weights, every head's dots are
// in the same units, which lets the max over heads be taken on integers.
void index_quantize_query(const float* q, int n_heads, int head_dim, const float* weight, int8_t* q8, float* qscale);

// Scores positions [s0, s1) (s0 a multiple of kIndexBlock) into out[0 .. s1 - s0).
void index_scores(const IndexQuery& q, const uint8_t* cache, const float* kscale, int dim, int64_t s0,
                  int64_t s1, float* out, Isa isa);
inline void index_scores(const IndexQuery& q, const uint8_t* cache, const float* kscale, int dim, int64_t s0,
                         int64_t s1, float* out) {
  index_scores(q, cache, kscale, dim, s0, s1, out, active_isa());
}

// A block of query rows scored together (prefill): queries[r] scores positions [s0, s1) into
// out + r * out_stride, the same numbers index_scores gives each row alone. Each 16-key block
// of the cache is read once for all rows (an int8 GEMM of the rows' heads against the keys)
// instead of once per row.
void index_scores_block(const IndexQuery* queries, int n_rows, const uint8_t* cache, const float* kscale, int dim,
                        int64_t s0, int64_t s1, float* out, int64_t out_stride, Isa isa);
inline void index_scores_block(const IndexQuery* queries, int n_rows, const uint8_t* cache, const float* kscale, int dim,
                               int64_t s0, int64_t s1, float* out, int64_t out_stride) {
  index_scores_block(queries, n_rows, cache, kscale, dim, s0, s1, out, out_stride, active_isa());
}

// Top-k of scores[0..n) by (score, index) descending — ties go to the later index, so the
// result is the same on every run and thread count. Appends base + index of the chosen
// entries to `out` in ascending order. Linear time: a radix histogram of the score's top bits
// finds the boundary bucket; only that bucket is partially sorted.
void select_topk(const float* scores, int64_t n, int64_t k, int32_t base, std::vector<int32_t>& out,
                 std::vector<uint64_t>& scratch);

}  // namespace docdsa::kernels
