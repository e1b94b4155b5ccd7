#include "docdsa/engine/session_state.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/indexer.h"

namespace docdsa {

namespace {
constexpr char kMagic[8] = {'D', 'S', 'A', 'S', 'T', 'A', 'T', 'E'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kKvF16 = 1;  // element type of the stored K and V
constexpr uint32_t kKvQ8 = 2;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t kv_type;
  int32_t n_layer, n_head_kv, head_dim, n_past;
  int32_t indexed, key_dim, reserved0, reserved1;
  uint64_t signature;
  uint64_t payload_bytes;  // what follows the header
};
static_assert(sizeof(Header) == 64);

int64_t blocks(int64_t n, int b) {
  return (n + b - 1) / b;
}
}  // namespace

// The one place that reads Session's private caches (session.h names it a friend).
struct SessionStateAccess {
  static bool indexed(const Session& s) { return s.indexed_; }
  static int key_dim(const Session& s) { return s.indexed_ ? s.params_.indexer->key_dim() : 0; }
  // The backend holds the caches (its layouts: backend.h, "Cache contents").
  static const Backend& backend(const Session& s) { return *s.backend_; }
  static Backend& backend(Session& s) { return *s.backend_; }
  static void set_n_past(Session& s, int n) {
    s.n_past_ = n;
    s.last_logits_ = nullptr;
    s.n_logit_rows_ = 0;
  }
};

namespace {
using A = SessionStateAccess;

// Bytes of one layer's state for n tokens, as stored (kv_type) and as the backend holds the
// f16 caches (k_f16_head, v_f16: what cache_read/cache_write move).
struct LayerSizes {
  uint64_t k_head = 0, v = 0, idx = 0, scale = 0;
  uint64_t k_f16_head = 0, v_f16 = 0;
  uint64_t total(int n_head_kv) const { return k_head * n_head_kv + v + idx + scale; }
};
LayerSizes layer_sizes(int n, int n_head_kv, int head_dim, int key_dim, uint32_t kv_type) {
  LayerSizes z;
  z.k_f16_head = static_cast<uint64_t>(blocks(n, kernels::kKeyBlock)) * kernels::kKeyBlock * head_dim * sizeof(uint16_t);
  z.v_f16 = static_cast<uint64_t>(n) * n_head_kv * head_dim * sizeof(uint16_t);
  if (kv_type == kKvQ8) {
    z.k_head = static_cast<uint64_t>(n) * (head_dim + sizeof(float));
    z.v = static_cast<uint64_t>(n) * n_head_kv * (head_dim + sizeof(float));
  } else {
    z.k_head = z.k_f16_head;
    z.v = z.v_f16;
  }
  z.idx = static_cast<uint64_t>(blocks(n, kernels::kIndexBlock)) * kernels::kIndexBlock * key_dim;
  z.scale = key_dim > 0 ? static_cast<uint64_t>(n) * sizeof(float) : 0;
  return z;
}

uint64_t payload_bytes(int n_layer, int n, int n_head_kv, int head_dim, int key_dim, uint32_t kv_type) {
  return layer_sizes(n, n_head_kv, head_dim, key_dim, kv_type).total(n_head_kv) * static_cast<uint64_t>(n_layer);
}

uint32_t kv_type_of(KvStorage k) {
  return k == KvStorage::kQ8 ? kKvQ8 : kKvF16;
}

// Symmetric int8 of `n` rows of `dim` values; row r's values are at get(r, d). Out: int8 rows
// then float scales.
template <typename Get>
void quantize_rows(int64_t n, int dim, const Get& get, std::vector<uint8_t>& out) {
  out.resize(static_cast<size_t>(n) * (dim + sizeof(float)));
  auto* q = reinterpret_cast<int8_t*>(out.data());
  uint8_t* scales = out.data() + static_cast<size_t>(n) * dim;
  std::vector<float> row(static_cast<size_t>(dim));
  for (int64_t r = 0; r < n; ++r) {
    float amax = 0;
    for (int d = 0; d < dim; ++d) amax = std::max(amax, std::fabs(row[static_cast<size_t>(d)] = get(r, d)));
    const float scale = amax / 127.0f;
    const float inv = scale > 0 ? 1.0f / scale : 0.0f;
    for (int d = 0; d < dim; ++d)
      q[r * dim + d] = static_cast<int8_t>(std::clamp(std::lround(row[static_cast<size_t>(d)] * inv), -127L, 127L));
    std::memcpy(scales + r * sizeof(float), &scale, sizeof(float));
  }
}

// The inverse: put(r, d, value) for every element of the n stored rows at `p`.
template <typename Put>
void dequantize_rows(const uint8_t* p, int64_t n, int dim, const Put& put) {
  const auto* q = reinterpret_cast<const int8_t*>(p);
  const uint8_t* scales = p + static_cast<size_t>(n) * dim;
  for (int64_t r = 0; r < n; ++r) {
    float scale;
    std::memcpy(&scale, scales + r * sizeof(float), sizeof(float));
    for (int d = 0; d < dim; ++d) put(r, d, static_cast<float>(q[r * dim + d]) * scale);
  }
}

Result<Header> read_header(std::span<const uint8_t> bytes) {
  Header h;
  if (bytes.size() < sizeof(Header)) return make_error(ErrorCode::kCorrupt, "saved session state is truncated (no header)");
  std::memcpy(&h, bytes.data(), sizeof(Header));
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) return make_error(ErrorCode::kCorrupt, "not a saved session state");
  if (h.version != kVersion)
    return make_error(ErrorCode::kUnsupported, "saved session state version " + std::to_string(h.version) +
                                                   " (this build reads " + std::to_string(kVersion) + ")");
  if (h.kv_type != kKvF16 && h.kv_type != kKvQ8)
    return make_error(ErrorCode::kUnsupported, "saved session state has an unknown KV element type");
  if (h.n_layer < 1 || h.n_head_kv < 1 || h.head_dim < 1 || h.n_past < 0 || h.key_dim < 0 || h.n_layer > 4096 ||
      h.n_head_kv > 4096 || h.head_dim > 4096 || h.key_dim > (1 << 20) || (h.indexed != 0) != (h.key_dim > 0))
    return make_error(ErrorCode::kCorrupt, "saved session state has an impossible shape");
  const uint64_t want = payload_bytes(h.n_layer, h.n_past, h.n_head_kv, h.head_dim, h.key_dim, h.kv_type);
  if (h.payload_bytes != want || bytes.size() - sizeof(Header) != want)
    return make_error(ErrorCode::kCorrupt, "saved session state is " + std::to_string(bytes.size()) + " bytes; its header says " +
                                               std::to_string(want + sizeof(Header)));
  return h;
}
}  // namespace

uint64_t session_state_signature(const Session& s) {
  const ModelConfig& c = s.model().config();
  const SessionParams& p = s.params();
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  const auto add = [&](const auto& v) { XXH3_64bits_update(st, &v, sizeof(v)); };
  for (int v : {c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.n_ff, c.n_vocab, c.n_rot}) add(v);
  // Sparse reading depends on the selection settings; dense reading on none of them.
  add(static_cast<int32_t>(s.sparse()));
  if (s.sparse())
    for (int v : {p.dsa.top_k, p.dsa.sinks, p.dsa.window, p.dsa.dense_layers, static_cast<int>(p.dsa.heads),
                  static_cast<int>(p.dsa.combine)})
      add(v);
  add(static_cast<int32_t>(A::indexed(s)));
  if (A::indexed(s)) {
    const Indexer& ix = *p.indexer;
    add(ix.rank());
    XXH3_64bits_update(st, ix.proj(0, 0),
                       sizeof(float) * static_cast<size_t>(ix.n_layer()) * ix.n_head_kv() * ix.rank() * ix.head_dim());
  }
  const kernels::RopeParams& r = s.rope();
  for (float v : {r.theta_scale, r.freq_scale, r.attn_factor, r.ext_factor, r.corr_low, r.corr_high}) add(v);
  add(r.n_rot);
  add(static_cast<int32_t>(r.neox));
  add(s.extend_group());
  add(s.extend_group() ? s.extend_window() : 0);
  add(static_cast<int32_t>(p.exact_attention));
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

const char* kv_storage_name(KvStorage k) {
  return k == KvStorage::kQ8 ? "q8" : "f16";
}

uint64_t session_state_bytes(const Session& s, KvStorage kv) {
  const ModelConfig& c = s.model().config();
  return sizeof(Header) + payload_bytes(c.n_layer, s.n_past(), c.n_head_kv, c.head_dim, A::key_dim(s), kv_type_of(kv));
}

Status save_session_state(const Session& s, const std::function<Status(const void*, size_t)>& write, KvStorage kv) {
  const ModelConfig& c = s.model().config();
  const int n = s.n_past();
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kVersion;
  h.kv_type = kv_type_of(kv);
  h.n_layer = c.n_layer;
  h.n_head_kv = c.n_head_kv;
  h.head_dim = c.head_dim;
  h.n_past = n;
  h.indexed = A::indexed(s) ? 1 : 0;
  h.key_dim = A::key_dim(s);
  h.signature = session_state_signature(s);
  h.payload_bytes = payload_bytes(c.n_layer, n, c.n_head_kv, c.head_dim, h.key_dim, h.kv_type);
  TRY_STATUS(write(&h, sizeof(h)));
  const LayerSizes z = layer_sizes(n, c.n_head_kv, c.head_dim, h.key_dim, h.kv_type);
  const Backend& b = A::backend(s);
  using Part = Backend::CachePart;
  std::vector<uint8_t> buf, q8;
  const auto put = [&](int il, Part part, int head, uint64_t bytes) -> Status {
    buf.resize(bytes);
    b.cache_read(il, part, head, 0, buf.data(), bytes);
    return write(buf.data(), bytes);
  };
  const int hd = c.head_dim;
  for (int il = 0; il < c.n_layer; ++il) {
    if (h.kv_type == kKvQ8) {
      for (int g = 0; g < c.n_head_kv; ++g) {
        buf.resize(z.k_f16_head);
        b.cache_read(il, Part::kKeys, g, 0, buf.data(), z.k_f16_head);
        const auto* k = reinterpret_cast<const uint16_t*>(buf.data());
        quantize_rows(n, hd, [&](int64_t pos, int d) { return kernels::fp16_to_fp32(k[kernels::k_offset(pos, d, hd)]); }, q8);
        TRY_STATUS(write(q8.data(), q8.size()));
      }
      buf.resize(z.v_f16);
      b.cache_read(il, Part::kValues, 0, 0, buf.data(), z.v_f16);
      const auto* v = reinterpret_cast<const uint16_t*>(buf.data());
      quantize_rows(static_cast<int64_t>(n) * c.n_head_kv, hd, [&](int64_t r, int d) { return kernels::fp16_to_fp32(v[r * hd + d]); },
                    q8);
      TRY_STATUS(write(q8.data(), q8.size()));
    } else {
      for (int g = 0; g < c.n_head_kv; ++g) TRY_STATUS(put(il, Part::kKeys, g, z.k_head));
      TRY_STATUS(put(il, Part::kValues, 0, z.v));
    }
    if (h.indexed) {
      TRY_STATUS(put(il, Part::kIndexKeys, 0, z.idx));
      TRY_STATUS(put(il, Part::kIndexScales, 0, z.scale));
    }
  }
  return {};
}

Result<int> session_state_tokens(std::span<const uint8_t> bytes) {
  TRY(const Header h, read_header(bytes));
  return h.n_past;
}

Result<KvStorage> session_state_kv_storage(std::span<const uint8_t> bytes) {
  TRY(const Header h, read_header(bytes));
  return h.kv_type == kKvQ8 ? KvStorage::kQ8 : KvStorage::kF16;
}

Status load_session_state(Session& s, std::span<const uint8_t> bytes) {
  TRY(const Header h, read_header(bytes));
  const ModelConfig& c = s.model().config();
  if (h.n_layer != c.n_layer || h.n_head_kv != c.n_head_kv || h.head_dim != c.head_dim)
    return make_error(ErrorCode::kInvalidArgument, "the saved session state was made with a different model");
  if ((h.indexed != 0) != A::indexed(s) || h.key_dim != A::key_dim(s) || h.signature != session_state_signature(s))
    return make_error(ErrorCode::kInvalidArgument,
                      "the saved session state was made with different attention, indexer, RoPE or context-extension settings");
  if (h.n_past > s.n_ctx())
    return make_error(ErrorCode::kOutOfRange, "the saved session state holds " + std::to_string(h.n_past) +
                                                  " tokens, more than the " + std::to_string(s.n_ctx()) + "-token context");
  const int n = h.n_past;
  const LayerSizes z = layer_sizes(n, c.n_head_kv, c.head_dim, h.key_dim, h.kv_type);
  Backend& b = A::backend(s);
  using Part = Backend::CachePart;
  const uint8_t* p = bytes.data() + sizeof(Header);
  // Positions past the saved ones read as empty (as in a fresh session): zero scales.
  const int64_t padded =
      (static_cast<int64_t>(s.n_ctx()) + kernels::kIndexBlock - 1) / kernels::kIndexBlock * kernels::kIndexBlock;
  const std::vector<float> zeros(h.indexed ? static_cast<size_t>(padded - n) : 0, 0.0f);
  const int hd = c.head_dim;
  std::vector<uint16_t> f16;  // q8: the f16 caches rebuilt before they are written
  for (int il = 0; il < c.n_layer; ++il) {
    if (h.kv_type == kKvQ8) {
      for (int g = 0; g < c.n_head_kv; ++g, p += z.k_head) {
        f16.assign(z.k_f16_head / sizeof(uint16_t), 0);  // padding of the last block: zero, as fresh
        dequantize_rows(p, n, hd, [&](int64_t pos, int d, float x) { f16[kernels::k_offset(pos, d, hd)] = kernels::fp32_to_fp16(x); });
        b.cache_write(il, Part::kKeys, g, 0, f16.data(), z.k_f16_head);
      }
      f16.resize(z.v_f16 / sizeof(uint16_t));
      dequantize_rows(p, static_cast<int64_t>(n) * c.n_head_kv, hd,
                      [&](int64_t r, int d, float x) { f16[r * hd + d] = kernels::fp32_to_fp16(x); });
      b.cache_write(il, Part::kValues, 0, 0, f16.data(), z.v_f16);
    } else {
      for (int g = 0; g < c.n_head_kv; ++g, p += z.k_head) b.cache_write(il, Part::kKeys, g, 0, p, z.k_head);
      b.cache_write(il, Part::kValues, 0, 0, p, z.v);
    }
    p += z.v;
    if (h.indexed) {
      b.cache_write(il, Part::kIndexKeys, 0, 0, p, z.idx);
      p += z.idx;
      b.cache_write(il, Part::kIndexScales, 0, 0, p, z.scale);
      p += z.scale;
      b.cache_write(il, Part::kIndexScales, 0, z.scale, zeros.data(), zeros.size() * sizeof(float));
    }
  }
  A::set_n_past(s, n);
  return {};
}

Status reload_session_state(Session& s, KvStorage kv) {
  std::vector<uint8_t> bytes;
  bytes.reserve(session_state_bytes(s, kv));
  TRY_STATUS(save_session_state(
      s,
      [&](const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        bytes.insert(bytes.end(), b, b + n);
        return Status{};
      },
      kv));
  return load_session_state(s, bytes);
}

}  // namespace docdsa
