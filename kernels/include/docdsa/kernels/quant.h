// Tensor element types (GGUF/ggml numbering), their block layouts, dequantisation and dot
// products. Weights stay in their file type; activations are quantised once per row to the
// weight type's "vec-dot" type (Q8_0, Q8_1, Q8_K, F16, BF16 or F32) and dotted in integers
// where the type allows, the way llama.cpp does, so our logits track the oracle closely.
//
// Every kernel has a scalar reference; AVX2 and AVX-512/VNNI versions are chosen at run time
// (kernels::active_isa()) and tested against the reference.
#pragma once

#include <cstddef>
#include <cstdint>

namespace docdsa::kernels {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q8_0 = 8,
  Q8_1 = 9,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
};

constexpr int kQK = 32;    // block size of Q4_0, Q4_1, Q8_0, Q8_1
constexpr int kQKK = 256;  // block size of the K-quants

#pragma pack(push, 1)
struct BlockQ4_0 { uint16_t d; uint8_t qs[kQK / 2]; };
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[kQK / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[kQK]; };
struct BlockQ8_1 { uint16_t d; uint16_t s; int8_t qs[kQK]; };  // s = d * sum(qs)
struct BlockQ4_K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[kQKK / 2]; };
struct BlockQ5_K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qh[kQKK / 8]; uint8_t qs[kQKK / 2]; };
struct BlockQ6_K { uint8_t ql[kQKK / 2]; uint8_t qh[kQKK / 4]; int8_t scales[kQKK / 16]; uint16_t d; };
struct BlockQ8_K { float d; int8_t qs[kQKK]; int16_t bsums[kQKK / 16]; };
#pragma pack(pop)

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

struct TypeInfo {
  const char* name;
  int block_size;      // elements per block
  size_t block_bytes;  // bytes per block
  DType vec_dot_type;  // what activations are quantised to for a dot with this type
  bool is_weight_type; // supported as a model weight
};

// nullptr when `ggml_type` is not a type we know.
const TypeInfo* type_info(uint32_t ggml_type);
inline const TypeInfo& info(DType t) { return *type_info(static_cast<uint32_t>(t)); }
// Bytes of a row of n elements; n must be a multiple of the block size.
size_t row_bytes(DType t, int64_t n);

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
const char* isa_name(Isa isa);
Isa detected_isa();          // the best the CPU supports (cpuid), capped by DOCDSA_ISA env
Isa active_isa();            // what kernels use now
void set_active_isa(Isa isa);  // tests and benchmarks; clamps to detected_isa()

// x [n] -> dst; n a multiple of the block size. Weight types and activation types.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// src [n] -> dst in type t (t one of Q8_0, Q8_1, Q8_K, F16, BF16, F32; also Q4_0/Q4_1 for tests).
void quantize_row(DType t, const float* src, void* dst, int64_t n);

// Dot of one weight row (type w) with one activation row already in info(w).vec_dot_type.
float vec_dot(DType w, int64_t n, const void* wrow, const void* arow, Isa isa);
inline float vec_dot(DType w, int64_t n, const void* wrow, const void* arow) {
  return vec_dot(w, n, wrow, arow, active_isa());
}

// Matrix product on a tile: out[t * ldo + r] = dot(W row r, A row t) for r in [r0, r1),
// t in [0, n_tok). W rows are `w_stride` bytes apart, A rows `a_stride` bytes apart
// (A in the weight type's vec-dot type). Register-blocked over rows and tokens.
struct MatmulArgs {
  DType wtype;
  int64_t n_in;            // inner dimension
  const uint8_t* w;        // [n_out rows of row_bytes(wtype, n_in)]
  size_t w_stride;
  const uint8_t* a;        // [n_tok rows] activations in vec-dot type
  size_t a_stride;
  int n_tok;
  float* out;              // [n_tok, ldo]
  int64_t ldo;
};
void matmul_tile(const MatmulArgs& args, int64_t r0, int64_t r1, Isa isa);
inline void matmul_tile(const MatmulArgs& args, int64_t r0, int64_t r1) {
  matmul_tile(args, r0, r1, active_isa());
}

}  // namespace docdsa::kernels
