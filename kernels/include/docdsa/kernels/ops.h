// Element-wise and row operations of the forward pass. Each is a plain loop the compiler
// vectorises; GCC's target_clones picks the AVX-512, AVX2 or baseline clone at load time.
#pragma once

#include <cstdint>

namespace docdsa::kernels {

// y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]; x, y [n] (y may alias x)
void rms_norm(const float* x, const float* w, float* y, int n, float eps);

// Rotary position embedding. rope_cache() fills cos/sin [n_rot/2] for one position, computed
// as llama.cpp does (theta_i = pos * theta_scale^i by repeated multiplication, times
// freq_scale; cosf/sinf times attn_factor) so positions rotate bit-identically; rope_apply()
// rotates one head vector with them.
// `neox` = false: pairs (2i, 2i+1) (llama in GGUF); true: pairs (i, i + n_rot/2) (qwen2).
//
// YaRN (Peng et al. 2023): with ext_factor > 0, dimension pair i blends the interpolated
// angle (freq_scale * theta) and the original one by a ramp that is 1 (keep original) below
// corr_low and 0 (interpolate) above corr_high, and the magnitude is scaled by
// 1 + 0.1 ln(1 / freq_scale).
struct RopeParams {
  int n_rot = 0;
  float theta_scale = 1.0f;  // base^(-2/n_rot)
  float freq_scale = 1.0f;   // 1/linear scaling factor
  float attn_factor = 1.0f;  // magnitude correction; 1 otherwise
  float ext_factor = 0.0f;   // YaRN ramp strength (0: off)
  float corr_low = 0.0f, corr_high = 0.0f;  // YaRN ramp ends, in dimension pairs
  bool neox = false;
};
// YaRN's correction range for a model trained at orig_ctx: the pairs that rotate more than
// beta_fast times (kept) and fewer than beta_slow times (interpolated) over orig_ctx.
void rope_yarn_corr_dims(int n_rot, int orig_ctx, float base, float beta_fast, float beta_slow, float* low, float* high);
void rope_cache(const RopeParams& p, int pos, float* cos_out, float* sin_out);
void rope_apply(float* x, int n_rot, const float* cos_t, const float* sin_t, bool neox);

// gate[i] = silu(gate[i]) * up[i]
void swiglu(float* gate, const float* up, int n);

// y[i] += x[i]
void add(float* y, const float* x, int n);

// y[i] += b[i] for every row: y [rows, n]
void add_bias_rows(float* y, const float* b, int rows, int n, int64_t stride);

}  // namespace docdsa::kernels
