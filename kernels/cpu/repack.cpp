// Packing quantised rows into the GEMM layout (gemm_impl.h), the per-call activation side data
// and the dispatch between the VNNI kernels, the packed scalar reference and matmul_tile.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "docdsa/kernels/huge_pages.h"
#include "docdsa/kernels/peak.h"
#include "gemm_impl.h"
#include "quant_common.h"

namespace docdsa::kernels {

using detail::gemm::Aux;
using detail::gemm::is_half;
using detail::gemm::kHalfBlock;
using detail::gemm::kHalfRecord;
using detail::gemm::Layout;
using detail::gemm::layout_of;

bool gemm_packable(DType t) {
  return layout_of(t).ok || is_half(t);
}

bool gemm_should_pack(DType t) {
  static const bool off = std::getenv("DOCDSA_NO_REPACK") != nullptr;  // A/B benchmarks
  return !off && gemm_packable(t) && active_isa() == Isa::kAvx512;
}

namespace {

void put_f16(uint8_t* rec, size_t off, int lane, uint16_t v) {
  std::memcpy(rec + off + 2 * lane, &v, 2);
}

// Writes one row's block of stored values q[0..block) into lane `lane` of a record: nibbles
// (two steps per 64 bytes) or bytes, then the high-bit planes (see gemm_impl.h).
void put_values(const Layout& l, const uint8_t* q, uint8_t* rec, int lane) {
  uint8_t* base = rec + 4 * lane;
  if (l.bytes) {
    for (int s = 0; s < l.block / 4; ++s) std::memcpy(base + 64 * s, q + 4 * s, 4);
    return;
  }
  for (int c = 0; c < l.block / 8; ++c)
    for (int i = 0; i < 4; ++i) base[64 * c + i] = static_cast<uint8_t>((q[8 * c + i] & 0xF) | ((q[8 * c + 4 + i] & 0xF) << 4));
  if (l.hbits) {
    const int spb = 8 / l.hbits;
    const int mask = (1 << l.hbits) - 1;
    for (int p = 0; p < l.block / (4 * spb); ++p)
      for (int i = 0; i < 4; ++i) {
        int v = 0;
        for (int u = 0; u < spb; ++u) v |= ((q[4 * spb * p + 4 * u + i] >> 4) & mask) << (l.hbits * u);
        base[l.h_off + 64 * p + i] = static_cast<uint8_t>(v);
      }
  }
}

// One block of one row into lane `lane` of record `rec`.
void pack_block(DType t, const Layout& l, const uint8_t* src, uint8_t* rec, int lane) {
  uint8_t q[kQKK];
  switch (t) {
    case DType::Q4_0:
    case DType::Q4_1: {
      const uint8_t* qs =
          t == DType::Q4_0 ? reinterpret_cast<const BlockQ4_0*>(src)->qs : reinterpret_cast<const BlockQ4_1*>(src)->qs;
      for (int i = 0; i < kQK / 2; ++i) {
        q[i] = qs[i] & 0xF;
        q[i + kQK / 2] = qs[i] >> 4;
      }
      put_values(l, q, rec, lane);
      if (t == DType::Q4_0) {
        put_f16(rec, l.d_off, lane, reinterpret_cast<const BlockQ4_0*>(src)->d);
      } else {
        const auto* b = reinterpret_cast<const BlockQ4_1*>(src);
        put_f16(rec, l.d_off, lane, b->d);
        put_f16(rec, l.m_off, lane, b->m);
      }
      return;
    }
    case DType::Q8_0: {
      const auto* b = reinterpret_cast<const BlockQ8_0*>(src);
      for (int i = 0; i < kQK; ++i) q[i] = static_cast<uint8_t>(b->qs[i] + 128);
      put_values(l, q, rec, lane);
      put_f16(rec, l.d_off, lane, b->d);
      return;
    }
    default: {
      detail::KBlock k;
      detail::unpack_k(t, src, &k);
      put_values(l, reinterpret_cast<const uint8_t*>(k.q), rec, lane);
      for (int j = 0; j < l.n_sub; ++j) {
        rec[detail::gemm::sc_pos(l, lane, j)] = static_cast<uint8_t>(static_cast<int8_t>(k.sc[j]));
        if (l.has_min) rec[detail::gemm::mn_pos(l, lane, j)] = static_cast<uint8_t>(k.mn[j]);
      }
      if (t == DType::Q6_K) {
        put_f16(rec, l.d_off, lane, reinterpret_cast<const BlockQ6_K*>(src)->d);
      } else {  // Q4_K and Q5_K start with d, dmin
        const auto* h = reinterpret_cast<const BlockQ4_K*>(src);
        put_f16(rec, l.d_off, lane, h->d);
        put_f16(rec, l.m_off, lane, h->dmin);
      }
      return;
    }
  }
}

}  // namespace

PackedWeight pack_alloc(DType t, const uint8_t* rows, int64_t n_out, int64_t n_in, size_t row_stride, bool force) {
  PackedWeight w;
  w.type = t;
  w.n_out = n_out;
  w.n_in = n_in;
  w.rows = rows;
  w.row_stride = row_stride;
  const Layout l = layout_of(t);
  const int block = is_half(t) ? kHalfBlock : l.block;
  if (!gemm_packable(t) || (!force && !gemm_should_pack(t)) || n_in % block != 0 || n_out <= 0) return w;
  w.record_bytes = is_half(t) ? kHalfRecord : l.record;
  w.n_blocks = n_in / block;
  const size_t total = w.group_bytes() * static_cast<size_t>(w.n_groups());
  // Weights of at least a huge page go on transparent huge pages (huge_pages.h): decode streams
  // them, and 4 KiB pages cost a TLB miss per page and stop the prefetchers at each boundary.
  // Measured (busy EPYC, A/B in one process): Q4_0/Q4_1/Q8_0 decode GEMV +7-28%, K-quants
  // +0.5-2%; SmolLM2 decode ~+4-7% (its 30 MB output matrix; its layer matrices are under a
  // huge page).
  auto* mem = static_cast<uint8_t*>(huge_aligned_alloc(total));
  if (!mem) return w;
  std::memset(mem + total - w.group_bytes(), 0, w.group_bytes());  // padding rows of the last group
  w.data = std::unique_ptr<uint8_t, void (*)(void*)>(mem, std::free);
  return w;
}

void pack_fill(PackedWeight& w, int64_t g0, int64_t g1) {
  if (!w.packed()) return;
  if (is_half(w.type)) {
    const int64_t r_end = std::min(w.n_out, g1 * kGemmGroupRows);
    for (int64_t r = g0 * kGemmGroupRows; r < r_end; ++r) {
      const int lane = static_cast<int>(r % kGemmGroupRows);
      uint8_t* grp = w.data.get() + static_cast<size_t>(r / kGemmGroupRows) * w.group_bytes();
      const uint8_t* row = w.rows + static_cast<size_t>(r) * w.row_stride;
      for (int64_t k = 0; k < w.n_in; ++k) std::memcpy(grp + detail::gemm::half_pos(w.type, lane, k), row + 2 * k, 2);
    }
    return;
  }
  const Layout l = layout_of(w.type);
  const size_t bb = info(w.type).block_bytes;
  const int64_t r_end = std::min(w.n_out, g1 * kGemmGroupRows);
  for (int64_t r = g0 * kGemmGroupRows; r < r_end; ++r) {
    const int lane = static_cast<int>(r % kGemmGroupRows);
    uint8_t* grp = w.data.get() + static_cast<size_t>(r / kGemmGroupRows) * w.group_bytes();
    const uint8_t* row = w.rows + static_cast<size_t>(r) * w.row_stride;
    for (int64_t b = 0; b < w.n_blocks; ++b)
      pack_block(w.type, l, row + static_cast<size_t>(b) * bb, grp + static_cast<size_t>(b) * l.record, lane);
  }
}

PackedWeight pack_weight(DType t, const uint8_t* rows, int64_t n_out, int64_t n_in, size_t row_stride, bool force) {
  PackedWeight w = pack_alloc(t, rows, n_out, n_in, row_stride, force);
  pack_fill(w, 0, w.n_groups());
  return w;
}

size_t activation_row_bytes(DType wtype, int64_t n_in) {
  return row_bytes(info(wtype).vec_dot_type, n_in);
}

void quantize_activations(DType wtype, const float* x, int64_t ldx, int n_tok, int64_t n_in, uint8_t* dst, size_t dst_stride) {
  const DType vt = info(wtype).vec_dot_type;
  for (int t = 0; t < n_tok; ++t) quantize_row(vt, x + t * ldx, dst + static_cast<size_t>(t) * dst_stride, n_in);
}

bool gemm_bf16_dot_supported() {
  static const bool ok = detected_isa() == Isa::kAvx512 && __builtin_cpu_supports("avx512bf16");
  return ok;
}

namespace {
std::atomic<bool>& bf16_dot_switch() {
  static std::atomic<bool> on{gemm_bf16_dot_supported()};
  return on;
}
}  // namespace

void set_gemm_bf16_dot(bool on) {
  bf16_dot_switch().store(on && gemm_bf16_dot_supported(), std::memory_order_relaxed);
}

void gemm(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, float* out, int64_t ldo, int64_t r0, int64_t r1,
          Isa isa, const void* aux) {
  if (r1 <= r0 || n_tok <= 0) return;
  if (!w.packed()) {
    MatmulArgs m{w.type, w.n_in, w.rows, w.row_stride, a, a_stride, n_tok, out, ldo};
    matmul_tile(m, r0, r1, isa);
    return;
  }
  if (isa != Isa::kAvx512 || detected_isa() != Isa::kAvx512) {
    if (is_half(w.type)) detail::gemm::gemm_half_ref(w, a, a_stride, n_tok, out, ldo, r0, r1);
    else detail::gemm::gemm_ref(w, a, a_stride, n_tok, out, ldo, r0, r1, gemm_llama_order());
    return;
  }
  if (is_half(w.type)) {
    detail::gemm::gemm_half(w, a, a_stride, n_tok, out, ldo, r0, r1, bf16_dot_switch().load(std::memory_order_relaxed));
    return;
  }
  const Aux* ax = static_cast<const Aux*>(aux);
  if (!ax) {
    Aux* own = detail::gemm::aux_scratch(static_cast<size_t>(n_tok) * static_cast<size_t>(w.n_blocks));
    detail::gemm::build_aux(w.type, a, a_stride, n_tok, w.n_blocks, own);
    ax = own;
  }
  const int n_amx = n_tok >= kGemmAmxMinTokens && gemm_amx_applies(w.type) ? n_tok / 16 * 16 : 0;
  if (n_amx > 0) detail::gemm::gemm_amx(w, a, a_stride, n_amx, ax, out, ldo, r0, r1);
  if (n_amx < n_tok)
    detail::gemm::gemm_vnni(w, a + static_cast<size_t>(n_amx) * a_stride, a_stride, n_tok - n_amx,
                            ax + static_cast<size_t>(n_amx) * static_cast<size_t>(w.n_blocks), out + n_amx * ldo, ldo, r0, r1,
                            gemm_llama_order());
}

namespace {
std::atomic<bool>& amx_switch() {
  static std::atomic<bool> on{std::getenv("DOCDSA_NO_AMX") == nullptr};  // A/B benchmarks
  return on;
}
}  // namespace

bool gemm_amx_supported() {
  static const bool ok = detected_isa() == Isa::kAvx512 && peak::amx_enable();
  return ok;
}

bool gemm_amx_active() {
  return amx_switch().load(std::memory_order_relaxed) && gemm_amx_supported();
}

void set_gemm_amx(bool on) {
  amx_switch().store(on && gemm_amx_supported(), std::memory_order_relaxed);
}

namespace {
std::atomic<bool>& llama_order_switch() {
  static std::atomic<bool> on{[] {
    const char* e = std::getenv("DOCDSA_LLAMA_ORDER");
    return e != nullptr && std::string_view(e) != "0";
  }()};
  return on;
}
}  // namespace

bool gemm_llama_order() {
  return llama_order_switch().load(std::memory_order_relaxed);
}

void set_gemm_llama_order(bool on) {
  llama_order_switch().store(on, std::memory_order_relaxed);
}

bool gemm_amx_applies(DType t) {
  const Layout l = layout_of(t);
  return l.ok && gemm_amx_active() && (l.kquant || !gemm_llama_order());
}

int gemm_token_block(DType wtype, int64_t n_in) {
  if (!gemm_amx_applies(wtype)) return 64;
  const size_t row = activation_row_bytes(wtype, n_in);
  int tb = 256;
  while (tb > 64 && static_cast<size_t>(tb) * row > (size_t{256} << 10)) tb /= 2;
  return tb;
}

size_t gemm_aux_bytes(DType wtype, int n_tok, int64_t n_in) {
  const Layout l = layout_of(wtype);
  if (!l.ok) return 0;
  return sizeof(Aux) * static_cast<size_t>(n_tok) * static_cast<size_t>(n_in / l.block);
}

void gemm_build_aux(DType wtype, const uint8_t* a, size_t a_stride, int n_tok, int64_t n_in, void* aux) {
  const Layout l = layout_of(wtype);
  if (l.ok) detail::gemm::build_aux(wtype, a, a_stride, n_tok, n_in / l.block, static_cast<Aux*>(aux));
}

namespace detail::gemm {

Aux* aux_scratch(size_t n) {
  thread_local std::vector<Aux> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

float* float_scratch(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

void build_aux(DType t, const uint8_t* a, size_t a_stride, int n_tok, int64_t nb, Aux* out) {
  for (int tok = 0; tok < n_tok; ++tok) {
    const uint8_t* row = a + static_cast<size_t>(tok) * a_stride;
    Aux* x = out + static_cast<size_t>(tok) * static_cast<size_t>(nb);
    for (int64_t b = 0; b < nb; ++b, ++x) {
      switch (t) {
        case DType::Q4_0:
        case DType::Q8_0: {
          const auto& blk = reinterpret_cast<const BlockQ8_0*>(row)[b];
          x->d = fp16_to_fp32(blk.d);
          x->s = 0.0f;
          x->v[8] = 0;
          for (int i = 0; i < 8; ++i) {  // per 4-value step, as llama.cpp's lanes apply the offset
            x->v[i] = -(t == DType::Q4_0 ? 8 : 128) * (blk.qs[4 * i] + blk.qs[4 * i + 1] + blk.qs[4 * i + 2] + blk.qs[4 * i + 3]);
            x->v[8] += x->v[i];  // the AMX kernel's block total
          }
          break;
        }
        case DType::Q4_1: {
          const auto& blk = reinterpret_cast<const BlockQ8_1*>(row)[b];
          x->d = fp16_to_fp32(blk.d);
          x->s = fp16_to_fp32(blk.s);
          break;
        }
        case DType::Q6_K: {
          const auto& blk = reinterpret_cast<const BlockQ8_K*>(row)[b];
          x->d = blk.d;
          for (int j = 0; j < 16; ++j) x->v[j] = -32 * blk.bsums[j];
          break;
        }
        default: {  // Q4_K, Q5_K
          const auto& blk = reinterpret_cast<const BlockQ8_K*>(row)[b];
          x->d = blk.d;
          for (int p = 0; p < 4; ++p) {
            const auto lo = static_cast<uint16_t>(blk.bsums[4 * p] + blk.bsums[4 * p + 1]);
            const auto hi = static_cast<uint16_t>(blk.bsums[4 * p + 2] + blk.bsums[4 * p + 3]);
            x->v[p] = static_cast<int32_t>(static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16));
          }
          break;
        }
      }
    }
  }
}

}  // namespace detail::gemm
}  // namespace docdsa::kernels
