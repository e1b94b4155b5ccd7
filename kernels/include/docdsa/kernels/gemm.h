// Quantised GEMM/GEMV on weights repacked once at load.
//
// Layout. Rows are packed in groups of kGemmGroupRows (16): one 512-bit register holds the 16
// rows' int32 sums, so a VPDPBUSD step multiplies 4 consecutive k-values of 16 rows (64 bytes
// of weights) by 4 activation bytes broadcast to every lane. Within a group, each quant block
// (32 values for Q4_0/Q4_1/Q8_0, 256 for the K-quants) becomes one record of fixed size:
// weights as unsigned 4-bit nibbles (two k-steps per 64 bytes) plus, for Q5_K/Q6_K, their
// high bits in separate planes, or bytes for Q8_0; then per-row scales already decoded
// (K-quant sub-block scales/mins as small integers, block scales as float). The last group is
// padded with zero rows. Records of a group are contiguous, so a row range streams linearly.
//
// F16 and BF16 weights keep their values, regrouped the same way (16 rows per register, see
// detail::gemm::half_pos): fp32 FMAs on converted F16, VDPBF16PS on BF16 pairs where the CPU has
// AVX512_BF16. Their sums run in k order per (row, token), not matmul_tile's 16-lane partial
// sums, so they differ from vec_dot by float rounding; they match their scalar reference bit
// for bit and do not depend on the batch size.
//
// Activations are the rows the existing matmul_tile takes: each token quantised once per
// layer to info(type).vec_dot_type (Q8_0, Q8_1 or Q8_K); quantize_activations() does that.
//
// Numerics. K-quants: bit-exact with the existing vec_dot/matmul_tile (same integer sums, and
// the float side of the scalar reference, detail::ref::vec_dot, in the same order, unfused).
// Q4_0/Q4_1/Q8_0 have two orders, both bit-exact with the packed scalar reference and neither
// dependent on the batch size or the kernel (VNNI, AMX) that runs a token:
// - the block order (default): per (row, token) one integer sum per 32-value block, then
//   acc = fma(d_w * d_a, sum, acc) and, for Q4_1, acc = fma(m, s, acc), block after block.
//   A few float steps per 8 VPDPBUSDs, as the K-quants; within float rounding of llama.cpp's
//   (the oracle tests' envelope).
// - llama.cpp's order (gemm_llama_order()): 8 per-step lane accumulators with FMAs and its
//   horizontal sum, as the AVX-512 matmul_tile and llama.cpp's vec_dot: first-position logits
//   bit-identical with the oracle. Each VPDPBUSD then needs a conversion and an FMA of its
//   own, so prefill cannot pass about half the int8 peak (bench --roofline on the Zen 5
//   machine: 18-33% against the block order's 41-62%), and AMX tiles cannot give it at all.
//
// Threads: gemm() is re-entrant and allocation-free after a thread's first call (thread-local
// scratch: per-token block scales when the caller passes none, the AMX tile buffers). The caller
// splits rows across threads; splitting at multiples of kGemmGroupRows avoids computing a
// shared group twice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "docdsa/kernels/quant.h"

namespace docdsa::kernels {

constexpr int kGemmGroupRows = 16;

struct PackedWeight {
  DType type = DType::F32;
  int64_t n_out = 0;
  int64_t n_in = 0;
  // Packed form (owned), or null: then gemm() runs matmul_tile over the original rows, which
  // must outlive this object (F32, the one type without a packed kernel).
  std::unique_ptr<uint8_t, void (*)(void*)> data{nullptr, [](void*) {}};
  size_t record_bytes = 0;  // one block of one group
  int64_t n_blocks = 0;     // blocks per row
  const uint8_t* rows = nullptr;
  size_t row_stride = 0;

  bool packed() const { return data != nullptr; }
  int64_t n_groups() const { return (n_out + kGemmGroupRows - 1) / kGemmGroupRows; }
  size_t group_bytes() const { return record_bytes * static_cast<size_t>(n_blocks); }
  size_t packed_bytes() const { return packed() ? group_bytes() * static_cast<size_t>(n_groups()) : 0; }
};

// True when `t` has a packed kernel (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K, F16, BF16).
bool gemm_packable(DType t);
// True when packing pays on this CPU: the type is packable and AVX-512 VNNI is active.
// (Without it the packed form would only run the scalar reference; keep matmul_tile then.)
// DOCDSA_NO_REPACK in the environment makes it false everywhere (A/B benchmarks).
bool gemm_should_pack(DType t);

// Repacks n_out rows of n_in values (rows `row_stride` bytes apart). Done once at load.
// Types without a packed kernel, or `force` false on a CPU where gemm_should_pack() is false,
// give an unpacked object that refers to `rows`.
PackedWeight pack_weight(DType t, const uint8_t* rows, int64_t n_out, int64_t n_in, size_t row_stride, bool force = false);

// The same in two parts, for packing in parallel: pack_alloc() sizes the object (nothing
// packed yet), pack_fill() packs row groups [g0, g1) (disjoint ranges from any threads).
PackedWeight pack_alloc(DType t, const uint8_t* rows, int64_t n_out, int64_t n_in, size_t row_stride, bool force = false);
void pack_fill(PackedWeight& w, int64_t g0, int64_t g1);

// Bytes of one activation row for weights of type `wtype` (its vec-dot type).
size_t activation_row_bytes(DType wtype, int64_t n_in);
// x [n_tok rows, ldx floats apart] -> dst [n_tok rows, dst_stride bytes apart] in the
// vec-dot type of `wtype`: once per layer input, shared by every matrix that reads it.
void quantize_activations(DType wtype, const float* x, int64_t ldx, int n_tok, int64_t n_in, uint8_t* dst, size_t dst_stride);

// Per-token block data of quantised activation rows (block sums and scales) that the packed
// kernels broadcast: built once per activation and weight type, shared by every matrix and
// row chunk that reads them (Q/K/V, gate/up). Bytes for n_tok rows (also the offset of row t).
size_t gemm_aux_bytes(DType wtype, int n_tok, int64_t n_in);
void gemm_build_aux(DType wtype, const uint8_t* a, size_t a_stride, int n_tok, int64_t n_in, void* aux);

// AMX: batches of at least kGemmAmxMinTokens tokens run int8 tile products, 16 tokens per tile
// (the rest of the batch on the VNNI kernels). Chosen at run time: gemm_amx_supported() when
// cpuid reports AMX-INT8 and the kernel granted the tile state (arch_prctl XTILEDATA);
// gemm_amx_active() unless DOCDSA_NO_AMX is set (A/B) or set_gemm_amx(false) (tests).
// Numerics: bit-exact with the VNNI kernels and the scalar reference, so results do not depend
// on the batch size. Q4_0/Q4_1/Q8_0 tiles run the block order; with gemm_llama_order() those
// types stay on VNNI (a tile cannot give llama.cpp's per-4-value lanes).
constexpr int kGemmAmxMinTokens = 16;
// Tokens per gemm() call a caller should sweep a row range with: 64 for the VNNI kernels; with
// AMX up to 256, as many as keep the block's activations within ~256 KiB of L2 (the unpacked
// weights of a row group serve every 16-token tile of a call).
int gemm_token_block(DType wtype, int64_t n_in);
bool gemm_amx_supported();
bool gemm_amx_active();
void set_gemm_amx(bool on);  // clamps to gemm_amx_supported()
// Q4_0/Q4_1/Q8_0 in llama.cpp's float order instead of the block order (see Numerics above):
// for bit-for-bit comparisons with llama.cpp. Off by default; DOCDSA_LLAMA_ORDER in the
// environment turns it on (any value but "0"), as does set_gemm_llama_order(true) (tests).
bool gemm_llama_order();
void set_gemm_llama_order(bool on);
// Whether a batch of >= kGemmAmxMinTokens tokens on weights of type t runs AMX tiles now.
bool gemm_amx_applies(DType t);
// BF16 weights use VDPBF16PS where cpuid reports AVX512_BF16; set_gemm_bf16_dot(false) runs
// the FMA kernel instead (tests; same results), true clamps to what the CPU has.
bool gemm_bf16_dot_supported();
void set_gemm_bf16_dot(bool on);

// out[t * ldo + r] = dot(W row r, A row t) for r in [r0, r1), t in [0, n_tok).
// A rows are `a_stride` bytes apart in the vec-dot type. `isa`: kAvx512 runs the AMX/VNNI
// kernels, anything lower the scalar reference on the packed layout (tests; in the order
// gemm_llama_order() chooses), for unpacked weights it selects matmul_tile's path. `aux`: gemm_build_aux() of these rows, or null
// (then built here, per call).
void gemm(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, float* out, int64_t ldo, int64_t r0, int64_t r1,
          Isa isa, const void* aux = nullptr);
inline void gemm(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, float* out, int64_t ldo, int64_t r0,
                 int64_t r1) {
  gemm(w, a, a_stride, n_tok, out, ldo, r0, r1, active_isa());
}

}  // namespace docdsa::kernels
