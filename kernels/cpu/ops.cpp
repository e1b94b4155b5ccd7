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

void rope(float* x, int n_rot, int pos, const float* inv_freq, bool neox, float attn_factor) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    const float theta = static_cast<float>(pos) * inv_freq[i];
    const float c = std::cos(theta) * attn_factor;
    const float s = std::sin(theta) * attn_factor;
    const int a = neox ? i : 2 * i;
    const int b = neox ? i + half : 2 * i + 1;
    const float x0 = x[a], x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
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
