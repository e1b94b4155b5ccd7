// Roofline probes (peak.h). Enough independent accumulators to cover each instruction's
// latency; inline asm barriers are avoided, the results feed the return value instead.
#include "docdsa/kernels/peak.h"

#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace docdsa::kernels::peak {
namespace {

bool cpuid7(int reg, int bit) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const unsigned v = reg == 1 ? b : reg == 2 ? c : d;
  return (v >> bit) & 1u;
}

}  // namespace

bool has_avx512_vnni() {
  return __builtin_cpu_supports("avx512f") && cpuid7(2, 11);
}

bool has_amx_int8() {
  return cpuid7(3, 24) && cpuid7(3, 25);
}  // edx: amx-tile, amx-int8

bool amx_enable() {
  static const bool ok = [] {
    if (!has_amx_int8()) return false;
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
}

double vnni_int8_ops(int64_t iters) {
  if (!has_avx512_vnni()) return 0.0;
  constexpr int kAcc = 16;
  __m512i acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i w = _mm512_set1_epi8(3);
  const __m512i a = _mm512_set1_epi8(-2);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], w, a);
  __m512i s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm512_add_epi32(s, acc[i]);
  volatile int sink = _mm512_reduce_add_epi32(s);
  (void)sink;
  return 2.0 * 64.0 * kAcc * static_cast<double>(iters);
}

double fma_f32_ops(int64_t iters) {
  if (!__builtin_cpu_supports("avx512f")) return 0.0;
  constexpr int kAcc = 16;
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-3f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
  __m512 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm512_add_ps(s, acc[i]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return 2.0 * 16.0 * kAcc * static_cast<double>(iters);
}

double amx_int8_ops(int64_t iters) {
  if (!amx_enable()) return 0.0;
  // Tiles 0-3: C (16x16 int32), 4-5: A (16 rows x 64 bytes), 6-7: B (16 x 64, VNNI order).
  alignas(64) uint8_t cfg[64] = {};
  cfg[0] = 1;  // palette 1
  for (int t = 0; t < 8; ++t) {
    const uint16_t colsb = 64;
    std::memcpy(cfg + 16 + 2 * t, &colsb, 2);
    cfg[48 + t] = 16;
  }
  alignas(64) static thread_local uint8_t buf[16 * 64];
  std::memset(buf, 1, sizeof(buf));
  alignas(64) int32_t c[16 * 16];
  _tile_loadconfig(cfg);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, buf, 64);
  _tile_loadd(5, buf, 64);
  _tile_loadd(6, buf, 64);
  _tile_loadd(7, buf, 64);
  for (int64_t it = 0; it < iters; ++it) {
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
  }
  _tile_stored(0, c, 64);
  _tile_release();
  volatile int32_t sink = c[0];
  (void)sink;
  return 2.0 * 4.0 * 16.0 * 16.0 * 64.0 * static_cast<double>(iters);
}

namespace {
// Plain x86-64 for CPUs without AVX-512 (this file is compiled with it enabled).
__attribute__((target("arch=x86-64"))) uint64_t read_stream_plain(const uint8_t* p, size_t n) {
  uint64_t a = 0, b = 0;
  for (size_t i = 0; i + 16 <= n; i += 16) {
    uint64_t x, y;
    std::memcpy(&x, p + i, 8);
    std::memcpy(&y, p + i + 8, 8);
    a ^= x;
    b += y;
  }
  return a ^ b;
}
}  // namespace

uint64_t read_stream(const uint8_t* p, size_t n) {
  if (!__builtin_cpu_supports("avx512f")) return read_stream_plain(p, n);
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 256 <= n; i += 256) {
    a0 = _mm512_xor_si512(a0, _mm512_load_si512(p + i));
    a1 = _mm512_xor_si512(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_xor_si512(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_xor_si512(a3, _mm512_load_si512(p + i + 192));
  }
  const __m512i s = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(s));
}

}  // namespace docdsa::kernels::peak
