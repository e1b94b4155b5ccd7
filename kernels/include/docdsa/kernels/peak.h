// Roofline probes: loops that run one instruction kind at its throughput, for measuring this
// machine's int8 (AVX-512 VNNI, AMX) and fp32 FMA peaks and its memory read bandwidth. Each
// returns the work done on the calling thread; the caller runs one per thread and times them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace docdsa::kernels::peak {

bool has_avx512_vnni();
bool has_amx_int8();  // cpuid: AMX tiles with int8
// Asks the kernel for the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA) once per
// process; false when the CPU lacks AMX or the kernel refuses.
bool amx_enable();

// Each runs `iters` rounds of independent multiply-adds and returns the operations done
// (one multiply-add = 2 operations). 0 when the ISA is missing.
double vnni_int8_ops(int64_t iters);
double fma_f32_ops(int64_t iters);
double amx_int8_ops(int64_t iters);  // needs amx_enable() first

// Reads n bytes (n a multiple of 256) with 512-bit loads; the result keeps the loads alive.
uint64_t read_stream(const uint8_t* p, size_t n);

}  // namespace docdsa::kernels::peak
