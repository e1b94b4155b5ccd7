#include "docdsa/kernels/ops.h"

#include <cmath>

#define DOCDSA_CLONES __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))

namespace docdsa::kernels {

// The sum of squares is accumulated in double and the scale applied before the weight, as
// llama.cpp does: activations here sit exactly on rounding ties often enough (see
// quant_ref.cpp) that the last bit of the scale decides some quantised values.
DOCDSA_CLONES void rms_norm(const float* x, const float* w, float* y, int n, float eps) {
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / n);
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

void rope_cache(const RopeParams& p, int pos, float* cos_out, float* sin_out) {
  float theta = static_cast<float>(pos);
  for (int i = 0; i < p.n_rot / 2; ++i) {
    const float t = p.freq_scale * theta;
    cos_out[i] = std::cos(t) * p.attn_factor;
    sin_out[i] = std::sin(t) * p.attn_factor;
    theta *= p.theta_scale;
  }
}

void rope_apply(float* x, int n_rot, const float* cos_t, const float* sin_t, bool neox) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    const int a = neox ? i : 2 * i;
    const int b = neox ? i + half : 2 * i + 1;
    const float x0 = x[a], x1 = x[b];
    x[a] = x0 * cos_t[i] - x1 * sin_t[i];
    x[b] = x0 * sin_t[i] + x1 * cos_t[i];
  }
}

DOCDSA_CLONES void swiglu(float* gate, const float* up, int n) {
  for (int i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

DOCDSA_CLONES void add(float* y, const float* x, int n) {
  for (int i = 0; i < n; ++i) y[i] += x[i];
}

void add_bias_rows(float* y, const float* b, int rows, int n, int64_t stride) {
  for (int r = 0; r < rows; ++r) add(y + r * stride, b, n);
}

}  // namespace docdsa::kernels
