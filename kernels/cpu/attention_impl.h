// One source for the AVX2 and AVX-512 attention kernels, written with GCC vector extensions
// (16 floats per vector; the AVX2 build lowers each to two ymm registers). Included by
// attention_avx2.cpp and attention_avx512.cpp inside their own namespace; the including file
// provides the standard headers, attention.h, fp16.h and load_f16x16().
//
// Flash-attention style: a block of 16 keys is loaded (already dimension-major in the
// cache) and shared by every query row; softmax is online (running max and sum), so memory
// stays O(block) whatever the context length. Several independent accumulators per row keep
// the FMA units busy instead of waiting on one dependency chain.

namespace {

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

inline v16f v_splat(float x) { return v16f{} + x; }

// n vectors of scratch carved from a float buffer. std::vector<v16f> is avoided on purpose:
// the AVX2 and AVX-512 builds give v16f different alignments, and its shared template
// instantiations would then disagree (an ODR violation ASan reports on delete).
inline v16f* vec_scratch(std::vector<float>& buf, size_t n) {
  buf.resize(n * 16 + 16);
  const auto addr = (reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~static_cast<uintptr_t>(63);
  return reinterpret_cast<v16f*>(addr);
}

// exp(x) for x <= 0 (softmax inputs minus their max); relative error about 2e-7.
inline v16f v_exp(v16f x) {
  x = x < -87.0f ? v_splat(-87.0f) : x;
  const v16f magic = v_splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const v16f n = (x * 1.44269504088896341f + magic) - magic;
  const v16f r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
  v16f p = v_splat(1.0f / 720.0f);
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const v16i bits = (__builtin_convertvector(n, v16i) + 127) << 23;
  v16f scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

inline v16f v_max(v16f a, v16f b) { return a > b ? a : b; }
inline float v_hmax(v16f v) {
  v = v_max(v, __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
  v = v_max(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
  v = v_max(v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
  return std::max(v[0], v[1]);
}
inline float v_hsum(v16f v) {
  v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
  v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
  v += __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  return v[0] + v[1];
}

}  // namespace

void attention_impl(const docdsa::kernels::AttentionArgs& a) {
  using docdsa::kernels::kKeyBlock;
  constexpr int kB = kKeyBlock;
  constexpr int kMaxVec = 16;  // head_dim <= 256
  const int d = a.head_dim;
  const int nv = d / 16;
  int max_keys = 0;
  for (int i = 0; i < a.n_rows; ++i) max_keys = std::max(max_keys, std::min(a.n_keys[i], a.key_end));

  thread_local std::vector<float> acc_buf, kt_buf, vb_buf;
  thread_local std::vector<float> m, l;
  v16f* acc = vec_scratch(acc_buf, static_cast<size_t>(a.n_rows) * nv);
  for (int i = 0; i < a.n_rows * nv; ++i) acc[i] = v16f{};
  v16f* kt = vec_scratch(kt_buf, static_cast<size_t>(d));  // kt[dd][j]: dimension dd of the block's key j
  v16f* vb = vec_scratch(vb_buf, static_cast<size_t>(kB) * nv);
  m.assign(static_cast<size_t>(a.n_rows), -std::numeric_limits<float>::infinity());
  l.assign(static_cast<size_t>(a.n_rows), 0.0f);

  for (int kb = a.key_begin; kb < max_keys; kb += kB) {
    const int nk = std::min(kB, max_keys - kb);
    if (a.positions == nullptr) {
      // Dense: the block is contiguous in the cache.
      const uint16_t* kp = a.k + static_cast<int64_t>(kb / kB) * d * kB;
      for (int dd = 0; dd < d; ++dd) kt[dd] = load_f16x16(kp + dd * kB);
      for (int j = 0; j < nk; ++j) {
        const uint16_t* vp = a.v + static_cast<int64_t>(kb + j) * a.v_stride;
        for (int c = 0; c < nv; ++c) vb[j * nv + c] = load_f16x16(vp + 16 * c);
      }
    } else {
      // Sparse: gather the selected positions. A run of 16 that is one whole cache block
      // loads like the dense case; otherwise each key's dimensions are copied (as f16) into
      // a block-shaped tile first.
      const int64_t p0 = a.positions[kb];
      if (nk == kB && p0 % kB == 0 && a.positions[kb + kB - 1] == p0 + kB - 1) {
        const uint16_t* kp = a.k + (p0 / kB) * d * kB;
        for (int dd = 0; dd < d; ++dd) kt[dd] = load_f16x16(kp + dd * kB);
      } else {
        thread_local std::vector<uint16_t> tile;
        tile.assign(static_cast<size_t>(d) * kB, 0);
        for (int j = 0; j < nk; ++j) {
          const int64_t pos = a.positions[kb + j];
          const uint16_t* kp = a.k + (pos / kB) * d * kB + pos % kB;
          for (int dd = 0; dd < d; ++dd) tile[static_cast<size_t>(dd) * kB + j] = kp[dd * kB];
        }
        for (int dd = 0; dd < d; ++dd) kt[dd] = load_f16x16(&tile[static_cast<size_t>(dd) * kB]);
      }
      if (a.key_shift) {
        for (int j = 0; j < nk; ++j) {
          const int32_t sh = a.key_shift[kb + j];
          if (sh == 0) continue;
          const float* c = a.rot_cos + static_cast<int64_t>(sh) * a.rot_pairs;
          const float* sn = a.rot_sin + static_cast<int64_t>(sh) * a.rot_pairs;
          for (int i = 0; i < a.rot_pairs; ++i) {
            const int ia = a.rot_neox ? i : 2 * i;
            const int ib = a.rot_neox ? i + a.rot_pairs : 2 * i + 1;
            const float x0 = kt[ia][j], x1 = kt[ib][j];
            kt[ia][j] = x0 * c[i] - x1 * sn[i];
            kt[ib][j] = x0 * sn[i] + x1 * c[i];
          }
        }
      }
      for (int j = 0; j < nk; ++j) {
        const uint16_t* vp = a.v + a.positions[kb + j] * a.v_stride;
        for (int c = 0; c < nv; ++c) vb[j * nv + c] = load_f16x16(vp + 16 * c);
      }
    }
    for (int j = nk; j < kB; ++j)
      for (int c = 0; c < nv; ++c) vb[j * nv + c] = v16f{};

    for (int i = 0; i < a.n_rows; ++i) {
      const int lim = std::min(kB, std::min(a.n_keys[i], a.key_end) - kb);
      if (lim <= 0) continue;
      uint32_t live = lim >= 32 ? 0xFFFFFFFFu : (1u << lim) - 1u;  // lanes attended
      if (a.mask) live &= a.mask[i * a.mask_stride + kb / 32] >> (kb % 32);
      if ((live & 0xFFFFu) == 0) continue;  // none of this row's keys in the block
      const float* q = a.q + i * a.q_stride;
      v16f s0{}, s1{}, s2{}, s3{};
      for (int dd = 0; dd < d; dd += 4) {
        s0 += q[dd] * kt[dd];
        s1 += q[dd + 1] * kt[dd + 1];
        s2 += q[dd + 2] * kt[dd + 2];
        s3 += q[dd + 3] * kt[dd + 3];
      }
      v16f s = ((s0 + s1) + (s2 + s3)) * a.scale;
      for (int j = 0; j < kB; ++j)
        if (!((live >> j) & 1u)) s[j] = -std::numeric_limits<float>::infinity();
      const float m_new = std::max(m[i], v_hmax(s));
      const float alpha = std::exp(m[i] - m_new);  // 0 on the first block (m = -inf)
      v16f p = v_exp(s - m_new);
      for (int j = 0; j < kB; ++j)
        if (!((live >> j) & 1u)) p[j] = 0.0f;
      l[i] = l[i] * alpha + v_hsum(p);
      m[i] = m_new;
      v16f* o = &acc[static_cast<size_t>(i) * nv];
      v16f o0[kMaxVec], o1[kMaxVec];
      for (int c = 0; c < nv; ++c) {
        o0[c] = o[c] * alpha;
        o1[c] = v16f{};
      }
      for (int j = 0; j < lim; j += 2) {  // two accumulator sets: even and odd keys
        const float p0 = p[j], p1 = p[j + 1];  // p[lim] is 0 when lim is odd
        const v16f* v0 = &vb[j * nv];
        const v16f* v1 = &vb[(j + 1) * nv];
        for (int c = 0; c < nv; ++c) {
          o0[c] += p0 * v0[c];
          o1[c] += p1 * v1[c];
        }
      }
      for (int c = 0; c < nv; ++c) o[c] = o0[c] + o1[c];
    }
  }
  for (int i = 0; i < a.n_rows; ++i) {
    const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    const v16f* o = &acc[static_cast<size_t>(i) * nv];
    float* out = a.out + i * a.out_stride;
    for (int c = 0; c < nv; ++c) {
      const v16f r = o[c] * inv;
      std::memcpy(out + 16 * c, &r, sizeof(r));
    }
    if (a.lse) a.lse[i] = l[i] > 0.0f ? m[i] + std::log(l[i]) : -std::numeric_limits<float>::infinity();
  }
}
