// Reproducible test inputs shared by the kernel and backend tests: normally distributed values
// from a fixed seed, so a failure names inputs that can be regenerated exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace docdsa::test {

// n values drawn from N(0, scale^2) with a Mersenne Twister seeded by `seed`.
inline std::vector<float> random_normal(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace docdsa::test
