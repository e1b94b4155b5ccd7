#include "docdsa/kernels/ops.h"

#include <algorithm>
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
  float mscale = p.attn_factor;
  if (p.ext_factor != 0.0f && p.freq_scale != 1.0f) mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
  for (int i = 0; i < p.n_rot / 2; ++i) {
    float t = p.freq_scale * theta;
    if (p.ext_factor != 0.0f) {
      const float y = (static_cast<float>(i) - p.corr_low) / std::max(0.001f, p.corr_high - p.corr_low);
      const float ramp = (1.0f - std::min(1.0f, std::max(0.0f, y))) * p.ext_factor;
      t = t * (1.0f - ramp) + theta * ramp;
    }
    cos_out[i] = std::cos(t) * mscale;
    sin_out[i] = std::sin(t) * mscale;
    theta *= p.theta_scale;
  }
}

void rope_yarn_corr_dims(int n_rot, int orig_ctx, float base, float beta_fast, float beta_slow, float* low,
                         float* high) {
  const auto corr_dim = [&](float beta) {
    return static_cast<float>(n_rot) * std::log(static_cast<float>(orig_ctx) / (beta * 2.0f * 3.14159265358979f)) /
           (2.0f * std::log(base));
  };
  *low = std::max(0.0f, std::floor(corr_dim(beta_fast)));
  *high = std::min(static_cast<float>(n_rot - 1), std::ceil(corr_dim(beta_slow)));
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
