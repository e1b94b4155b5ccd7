// Element-wise and row operations of the forward pass. Each is a plain loop the compiler
// vectorises; GCC's target_clones picks the AVX-512, AVX2 or baseline clone at load time.
#pragma once

#include <cstdint>

namespace docdsa::kernels {

// y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]; x, y [n] (y may alias x)
void rms_norm(const float* x, const float* w, float* y, int n, float eps);

// Rotary position embedding on one head vector x [head_dim] at position `pos`.
// `neox` = false: pairs (2i, 2i+1) (llama in GGUF); true: pairs (i, i + n_rot/2) (qwen2).
// `inv_freq` [n_rot/2] holds the per-pair frequency (base, scaling applied by the caller).
// `attn_factor` scales cos/sin (YaRN's magnitude correction; 1 otherwise).
void rope(float* x, int n_rot, int pos, const float* inv_freq, bool neox, float attn_factor);

// gate[i] = silu(gate[i]) * up[i]
void swiglu(float* gate, const float* up, int n);

// y[i] += x[i]
void add(float* y, const float* x, int n);

// y[i] += b[i] for every row: y [rows, n]
void add_bias_rows(float* y, const float* b, int rows, int n, int64_t stride);

}  // namespace docdsa::kernels
