// The reference behind Backend::attention_mass, shared by every backend: only where the keys
// live differs between devices, so each backend passes an accessor for its cache layout.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "docdsa/kernels/fp16.h"

namespace docdsa {

// For one query token at position `pos`: the share of its dense softmax mass (over keys
// 0..pos, averaged over the n_head heads) that falls on the keys in `sel`. `q` holds the
// token's heads back to back (head h at q[h * hd]); key(g, s, d) returns the f16 bits of
// dimension d of key s in KV head g. Heads share KV heads in groups of `group`.
template <class KeyAt>
double selected_attention_mass(const float* q, int n_head, int group, int hd, int pos, std::span<const int32_t> sel,
                               KeyAt&& key) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<double> p(static_cast<size_t>(pos + 1));
  double total = 0.0;
  for (int h = 0; h < n_head; ++h) {
    const float* qh = q + h * hd;
    const int g = h / group;
    double mx = -INFINITY;
    for (int s = 0; s <= pos; ++s) {
      float dot = 0.0f;
      for (int d = 0; d < hd; ++d) dot += qh[d] * kernels::fp16_to_fp32(key(g, s, d));
      p[static_cast<size_t>(s)] = dot * scale;
      mx = std::max(mx, p[static_cast<size_t>(s)]);
    }
    double z = 0.0;
    for (double& x : p) z += (x = std::exp(x - mx));
    double in = 0.0;
    for (int32_t s : sel) in += p[static_cast<size_t>(s)];
    total += in / z;
  }
  return total / n_head;
}

}  // namespace docdsa
