// One source for the AVX2 and AVX-512 sparse (DSA) attention kernel (attention.h,
// SparseAttentionArgs), included after attention_impl.h (its vector helpers) by
// attention_avx2.cpp and attention_avx512.cpp inside their own namespace.
//
// Two passes over the gathered list, chunk by chunk. Pass 1: every entry's key is read once
// from the row-major copy (one contiguous row per position), rotated when re-positioned, and
// transposed into dimension-major 16-entry tiles; each token of the block, with all its heads
// at once (they share its selection), runs QK on the tiles holding one of its entries (the
// others are skipped) and keeps the scores and its maximum. Pass 2: values are converted
// once per chunk; each token weighs only its own entries (iterating the set bits) by
// exp(score - max), in list order, so its result does not depend on which tokens share the
// block: batched prefill gives decode's numbers exactly.

namespace sparse {

typedef float v8f __attribute__((vector_size(32)));

#define DOCDSA_PACK(...) __VA_ARGS__
// Swaps the off-diagonal b x b blocks of 16 rows: four passes (b = 8, 4, 2, 1) transpose a
// 16 x 16 tile held as 16 row vectors.
#define DOCDSA_TSTEP(B, IA, IB)                     \
  for (int i = 0; i < 16; ++i) {                    \
    if (i & (B)) continue;                          \
    const v16f x = r[i], y = r[i + (B)];            \
    r[i] = __builtin_shufflevector(x, y, IA);       \
    r[i + (B)] = __builtin_shufflevector(x, y, IB); \
  }
inline void transpose16(v16f* r) {
  DOCDSA_TSTEP(8, DOCDSA_PACK(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
               DOCDSA_PACK(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31))
  DOCDSA_TSTEP(4, DOCDSA_PACK(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
               DOCDSA_PACK(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31))
  DOCDSA_TSTEP(2, DOCDSA_PACK(0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
               DOCDSA_PACK(2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31))
  DOCDSA_TSTEP(1, DOCDSA_PACK(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
               DOCDSA_PACK(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31))
}
#undef DOCDSA_TSTEP
#undef DOCDSA_PACK

// Rotates one key row (nv vectors) forward by `sh` positions (context extension).
inline void rotate_row(const docdsa::kernels::SparseAttentionArgs& a, v16f* row, int nv, int32_t sh) {
  const int P = a.rot_pairs;
  const float* c = a.rot_cos + static_cast<int64_t>(sh) * P;
  const float* s = a.rot_sin + static_cast<int64_t>(sh) * P;
  if (a.rot_neox && P % 16 == 0 && 2 * P <= 16 * nv) {
    for (int i = 0; i < P / 16; ++i) {
      v16f cv, sv;
      std::memcpy(&cv, c + 16 * i, 64);
      std::memcpy(&sv, s + 16 * i, 64);
      const v16f x0 = row[i], x1 = row[i + P / 16];
      row[i] = x0 * cv - x1 * sv;
      row[i + P / 16] = x0 * sv + x1 * cv;
    }
    return;
  }
  if (!a.rot_neox && P % 8 == 0 && 2 * P <= 16 * nv) {
    for (int i = 0; i < P / 8; ++i) {  // vector i holds pairs 8i .. 8i+7
      // Eight-float loads widened by shuffles: filling half of a zeroed 16-float vector went
      // through the stack, and the full-width reload stalled on store forwarding for every key.
      v8f c8, s8;
      std::memcpy(&c8, c + 8 * i, 32);
      std::memcpy(&s8, s + 8 * i, 32);
      const v16f cd = __builtin_shufflevector(c8, c8, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
      const v16f sd = __builtin_shufflevector(s8, -s8, 8, 0, 9, 1, 10, 2, 11, 3, 12, 4, 13, 5, 14, 6, 15, 7);
      const v16f x = row[i];
      const v16f sw = __builtin_shufflevector(x, x, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
      row[i] = x * cd + sw * sd;
    }
    return;
  }
  float* f = reinterpret_cast<float*>(row);
  for (int i = 0; i < P; ++i) {
    const int ia = a.rot_neox ? i : 2 * i, ib = a.rot_neox ? i + P : 2 * i + 1;
    const float x0 = f[ia], x1 = f[ib];
    f[ia] = x0 * c[i] - x1 * s[i];
    f[ib] = x0 * s[i] + x1 * c[i];
  }
}

inline v16f lane_mask(uint32_t bits) {
  const v16i lanes = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};
  const v16i on = ((v16i{} + static_cast<int32_t>(bits)) & lanes) != 0;
  v16f r;
  std::memcpy(&r, &on, sizeof(r));
  return r;
}
inline v16f select_bits(v16f on, v16f x, v16f y) {  // on lanes: x, else y
  v16i oi, xi, yi;
  std::memcpy(&oi, &on, 64);
  std::memcpy(&xi, &x, 64);
  std::memcpy(&yi, &y, 64);
  const v16i r = (xi & oi) | (yi & ~oi);
  v16f f;
  std::memcpy(&f, &r, 64);
  return f;
}

// Pass 1, one token's heads [h0, h0 + HB) over one chunk: QK on the tiles holding one of its
// entries, scores (masked lanes -inf) into s[h][entry], running maxima into mx.
template <int NV, int HB>
void qk_chunk(const docdsa::kernels::SparseAttentionArgs& a, const v16f* kt, int n_tiles, const uint32_t* bits, const float* q,
              float* const* s, float* mx) {
  constexpr int D = NV * 16;
  const v16f ninf = v_splat(-std::numeric_limits<float>::infinity());
  // Lane-wise maxima, reduced across lanes once per chunk rather than once per tile (max is
  // exact in any order, so the result is the same).
  v16f vmax[HB];
  for (int h = 0; h < HB; ++h) vmax[h] = v_splat(mx[h]);
  for (int tile = 0; tile < n_tiles; ++tile) {
    const uint32_t live = bits[tile];
    if (live == 0) continue;
    const v16f* kp = kt + static_cast<size_t>(tile) * D;
    v16f s0[HB], s1[HB];
    for (int h = 0; h < HB; ++h) s0[h] = s1[h] = v16f{};
    for (int dd = 0; dd < D; dd += 2) {
      v16f k0 = kp[dd], k1 = kp[dd + 1];
      // Held in registers: one load per key vector, the queries as broadcast operands
      // (otherwise every head reloads the key and the loads, not the FMAs, set the pace).
#ifdef __AVX512F__
      asm("" : "+v"(k0), "+v"(k1));
#endif
      for (int h = 0; h < HB; ++h) {
        s0[h] += q[h * D + dd] * k0;
        s1[h] += q[h * D + dd + 1] * k1;
      }
    }
    const v16f on = lane_mask(live);
    for (int h = 0; h < HB; ++h) {
      const v16f sc = select_bits(on, (s0[h] + s1[h]) * a.scale, ninf);
      vmax[h] = vmax[h] > sc ? vmax[h] : sc;
      std::memcpy(s[h] + 16 * tile, &sc, 64);
    }
  }
  for (int h = 0; h < HB; ++h) mx[h] = v_hmax(vmax[h]);
}

// Pass 2, the same heads over one chunk: p = exp(s - max) on its entries, summed and
// multiplied into the values one entry at a time in list order, so a token's result depends
// only on its own entries, never on which other tokens share the block.
constexpr int kMaxChunk = 256;  // entries per chunk (run's kChunk) at most

template <int NV, int HB>
void pv_chunk(const v16f* vb, int n_tiles, const uint32_t* bits, float* const* s, const float* mx, float* l, v16f* o) {
  v16f acc[HB][NV];
  float lsum[HB];
  for (int h = 0; h < HB; ++h) {
    lsum[h] = l[h];
    for (int c = 0; c < NV; ++c) acc[h][c] = o[h * NV + c];
  }
#ifdef __AVX512F__
  // The chunk's live entries first, compressed into one list (index, and p per head), then
  // one loop over them: iterating each tile's set bits ended every tile's loop on a
  // mispredicted branch, once per five entries or so. Same entries, same order, same sums.
  alignas(64) float pl[HB][kMaxChunk + 16];
  alignas(64) int32_t il[kMaxChunk + 16];
  int n = 0;
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int tile = 0; tile < n_tiles; ++tile) {
    const uint32_t live = bits[tile];
    if (live == 0) continue;
    const __mmask16 m = static_cast<__mmask16>(live);
    for (int h = 0; h < HB; ++h) {
      v16f sc;
      std::memcpy(&sc, s[h] + 16 * tile, 64);
      const v16f p = v_exp(sc - mx[h]);
      __m512 pv;
      std::memcpy(&pv, &p, 64);
      _mm512_storeu_ps(pl[h] + n, _mm512_maskz_compress_ps(m, pv));
    }
    _mm512_storeu_si512(il + n, _mm512_maskz_compress_epi32(m, _mm512_add_epi32(iota, _mm512_set1_epi32(16 * tile))));
    n += __builtin_popcount(live);
  }
  for (int e = 0; e < n; ++e) {
    const v16f* vj = vb + static_cast<size_t>(il[e]) * NV;
    for (int h = 0; h < HB; ++h) {
      const float pj = pl[h][e];
      lsum[h] += pj;
      for (int c = 0; c < NV; ++c) acc[h][c] += pj * vj[c];
    }
  }
#else
  alignas(64) float pb[HB][16];
  for (int tile = 0; tile < n_tiles; ++tile) {
    const uint32_t live = bits[tile];
    if (live == 0) continue;
    for (int h = 0; h < HB; ++h) {
      v16f sc;
      std::memcpy(&sc, s[h] + 16 * tile, 64);
      const v16f p = v_exp(sc - mx[h]);
      std::memcpy(pb[h], &p, 64);
    }
    const v16f* vt = vb + static_cast<size_t>(tile) * 16 * NV;
    for (uint32_t x = live; x != 0; x &= x - 1) {
      const int j = __builtin_ctz(x);
      const v16f* vj = vt + j * NV;
      for (int h = 0; h < HB; ++h) {
        const float pj = pb[h][j];
        lsum[h] += pj;
        for (int c = 0; c < NV; ++c) acc[h][c] += pj * vj[c];
      }
    }
  }
#endif
  for (int h = 0; h < HB; ++h) {
    l[h] = lsum[h];
    for (int c = 0; c < NV; ++c) o[h * NV + c] = acc[h][c];
  }
}

// Gathered rows are scattered over the cache: ask for a row kAhead entries early (24 was 8-15%
// faster than 12 for decode at 128K; 48 no better).
constexpr int kAhead = 24;
inline void prefetch_row(const uint16_t* p, int d) {
  for (int i = 0; i < d; i += 32) __builtin_prefetch(p + i);
}
inline void prefetch_rot(const docdsa::kernels::SparseAttentionArgs& a, int32_t sh) {
  const int64_t at = static_cast<int64_t>(sh) * a.rot_pairs;
  for (int i = 0; i < a.rot_pairs; i += 16) {
    __builtin_prefetch(a.rot_cos + at + i);
    __builtin_prefetch(a.rot_sin + at + i);
  }
}

template <int NV>
void run(const docdsa::kernels::SparseAttentionArgs& a) {
  constexpr int D = NV * 16;
  constexpr int HB = NV <= 4 ? 3 : 2;          // heads per pass: accumulators stay in registers
  constexpr int kChunk = NV <= 4 ? 256 : 128;  // entries per chunk: its K or V tiles stay in L2
  static_assert(kChunk <= kMaxChunk);
  const int H = a.n_heads, T = a.n_tokens;
  const int32_t begin = a.entry_begin, end = std::min(a.n_entries, a.entry_end);
  if (end <= begin) {
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < H; ++h) {
        std::fill_n(a.out + t * a.out_stride + static_cast<int64_t>(h) * D, D, 0.0f);
        if (a.lse) a.lse[t * H + h] = -std::numeric_limits<float>::infinity();
      }
    return;
  }
  const int n_tiles_all = (end - begin + 15) / 16;
  thread_local std::vector<float> kt_buf, vb_buf, o_buf, row_buf, s_buf, m_buf, l_buf;
  thread_local std::vector<uint32_t> bits_buf;
  thread_local std::vector<float*> s_ptr;
  v16f* kt = vec_scratch(kt_buf, static_cast<size_t>(kChunk) * NV);
  v16f* vb = vec_scratch(vb_buf, static_cast<size_t>(kChunk) * NV);
  v16f* o = vec_scratch(o_buf, static_cast<size_t>(T) * H * NV);
  v16f* rows = vec_scratch(row_buf, static_cast<size_t>(16) * NV);
  // Scores of every (token, head) over the whole range, 16 per tile (only live tiles written).
  const size_t s_len = static_cast<size_t>(n_tiles_all) * 16;
  s_buf.resize(static_cast<size_t>(T) * H * s_len);
  s_ptr.resize(static_cast<size_t>(T) * H);
  m_buf.assign(static_cast<size_t>(T) * H, -std::numeric_limits<float>::infinity());
  l_buf.assign(static_cast<size_t>(T) * H, 0.0f);
  for (size_t i = 0; i < static_cast<size_t>(T) * H * NV; ++i) o[i] = v16f{};
  // Each token's 16-entry bit words per tile of the range.
  bits_buf.resize(static_cast<size_t>(T) * n_tiles_all);
  const int nr = end - begin;
  const uint32_t tail = (nr % 16) == 0 ? 0xFFFFu : (1u << (nr % 16)) - 1u;
  for (int t = 0; t < T; ++t)
    for (int tile = 0; tile < n_tiles_all; ++tile) {
      const int32_t e0 = begin + tile * 16;
      uint32_t b = 0xFFFFu;
      if (a.mask) {
        // A tile starting past bit 16 of a mask word (entry_begin not a multiple of 16) takes
        // its upper bits from the next word.
        const uint32_t* mw = a.mask + t * a.mask_stride;
        const int64_t w = e0 / 32, sh = e0 % 32;
        uint64_t x = mw[w];
        if (sh > 16 && w + 1 < a.mask_stride) x |= static_cast<uint64_t>(mw[w + 1]) << 32;
        b = static_cast<uint32_t>(x >> sh) & 0xFFFFu;
      }
      if (tile == n_tiles_all - 1) b &= tail;
      bits_buf[static_cast<size_t>(t) * n_tiles_all + tile] = b;
    }

  // Pass 1: keys gathered chunk by chunk (rotated, transposed into tiles), scores and maxima.
  for (int32_t c0 = begin; c0 < end; c0 += kChunk) {
    const int nc = std::min<int32_t>(kChunk, end - c0);
    const int n_tiles = (nc + 15) / 16;
    const int tile0 = (c0 - begin) / 16;
    for (int tile = 0; tile < n_tiles; ++tile) {
      for (int j = 0; j < 16; ++j) {
        const int e = tile * 16 + j;
        v16f* row = rows + j * NV;
        if (e >= nc) {
          for (int c = 0; c < NV; ++c) row[c] = v16f{};
          continue;
        }
        const uint16_t* kp = a.k + static_cast<int64_t>(a.positions[c0 + e]) * a.k_stride;
        if (c0 + e + kAhead < end) {
          prefetch_row(a.k + static_cast<int64_t>(a.positions[c0 + e + kAhead]) * a.k_stride, D);
          // A re-positioned key's cos/sin rows are as scattered as the key (one per shift).
          if (a.key_shift && a.key_shift[c0 + e + kAhead] != 0) prefetch_rot(a, a.key_shift[c0 + e + kAhead]);
        }
        for (int c = 0; c < NV; ++c) row[c] = load_f16x16(kp + 16 * c);
        if (a.key_shift && a.key_shift[c0 + e] != 0) rotate_row(a, row, NV, a.key_shift[c0 + e]);
      }
      v16f* kp = kt + static_cast<size_t>(tile) * D;
      for (int c = 0; c < NV; ++c) {
        v16f blk[16];
        for (int j = 0; j < 16; ++j) blk[j] = rows[j * NV + c];
        transpose16(blk);
        for (int i = 0; i < 16; ++i) kp[16 * c + i] = blk[i];
      }
    }
    for (int t = 0; t < T; ++t) {
      const uint32_t* bits = bits_buf.data() + static_cast<size_t>(t) * n_tiles_all + tile0;
      const float* qt = a.q + t * a.q_stride;
      for (int h0 = 0; h0 < H; h0 += HB) {
        const int hb = std::min(HB, H - h0);
        const size_t st = static_cast<size_t>(t) * H + h0;
        float* sp[HB];
        for (int h = 0; h < hb; ++h) sp[h] = s_buf.data() + (st + h) * s_len + static_cast<size_t>(tile0) * 16;
        const float* qh = qt + static_cast<int64_t>(h0) * D;
        float* mm = m_buf.data() + st;
        if (hb == HB)
          qk_chunk<NV, HB>(a, kt, n_tiles, bits, qh, sp, mm);
        else if (hb == 2)
          qk_chunk<NV, 2>(a, kt, n_tiles, bits, qh, sp, mm);
        else
          qk_chunk<NV, 1>(a, kt, n_tiles, bits, qh, sp, mm);
      }
    }
  }

  // Pass 2: values gathered chunk by chunk, softmax weights against each row's maximum.
  for (int32_t c0 = begin; c0 < end; c0 += kChunk) {
    const int nc = std::min<int32_t>(kChunk, end - c0);
    const int n_tiles = (nc + 15) / 16;
    const int tile0 = (c0 - begin) / 16;
    for (int e = 0; e < n_tiles * 16; ++e) {
      v16f* vr = vb + static_cast<size_t>(e) * NV;
      if (e >= nc) {
        for (int c = 0; c < NV; ++c) vr[c] = v16f{};
        continue;
      }
      const uint16_t* vp = a.v + static_cast<int64_t>(a.positions[c0 + e]) * a.v_stride;
      if (c0 + e + kAhead < end) prefetch_row(a.v + static_cast<int64_t>(a.positions[c0 + e + kAhead]) * a.v_stride, D);
      for (int c = 0; c < NV; ++c) vr[c] = load_f16x16(vp + 16 * c);
    }
    for (int t = 0; t < T; ++t) {
      const uint32_t* bits = bits_buf.data() + static_cast<size_t>(t) * n_tiles_all + tile0;
      for (int h0 = 0; h0 < H; h0 += HB) {
        const int hb = std::min(HB, H - h0);
        const size_t st = static_cast<size_t>(t) * H + h0;
        float* sp[HB];
        for (int h = 0; h < hb; ++h) sp[h] = s_buf.data() + (st + h) * s_len + static_cast<size_t>(tile0) * 16;
        const float* mm = m_buf.data() + st;
        float* ll = l_buf.data() + st;
        v16f* oo = o + st * NV;
        if (hb == HB)
          pv_chunk<NV, HB>(vb, n_tiles, bits, sp, mm, ll, oo);
        else if (hb == 2)
          pv_chunk<NV, 2>(vb, n_tiles, bits, sp, mm, ll, oo);
        else
          pv_chunk<NV, 1>(vb, n_tiles, bits, sp, mm, ll, oo);
      }
    }
  }
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < H; ++h) {
      const size_t st = static_cast<size_t>(t) * H + h;
      const float lt = l_buf[st];
      const float inv = lt > 0.0f ? 1.0f / lt : 0.0f;
      float* out = a.out + t * a.out_stride + static_cast<int64_t>(h) * D;
      for (int c = 0; c < NV; ++c) {
        const v16f r = o[st * NV + c] * inv;
        std::memcpy(out + 16 * c, &r, sizeof(r));
      }
      if (a.lse) a.lse[st] = lt > 0.0f ? m_buf[st] + std::log(lt) : -std::numeric_limits<float>::infinity();
    }
}

}  // namespace sparse

// False when the shape needs the reference (head_dim not a multiple of 16 or above 128).
bool attention_sparse_impl(const docdsa::kernels::SparseAttentionArgs& a) {
  switch (a.head_dim) {
    case 16:
      sparse::run<1>(a);
      return true;
    case 32:
      sparse::run<2>(a);
      return true;
    case 48:
      sparse::run<3>(a);
      return true;
    case 64:
      sparse::run<4>(a);
      return true;
    case 80:
      sparse::run<5>(a);
      return true;
    case 96:
      sparse::run<6>(a);
      return true;
    case 112:
      sparse::run<7>(a);
      return true;
    case 128:
      sparse::run<8>(a);
      return true;
    default:
      return false;
  }
}
