// Saving and loading a session's caches (KV, indexer) so that a document read once can be
// answered later, from another process, without reading it again. The state holds only the
// first n_past tokens (not the n_ctx capacity); it loads into any session of the same model
// and attention, RoPE and extension settings whose n_ctx holds those tokens.
//
// Format (little-endian): a fixed header (magic, version, KV element type, model shape,
// n_past, a hash of the settings that shape the cached values), then per layer: K of each KV
// head, V, and with an indexer cache its keys (kernels/indexer.h, whole blocks) and n_past
// scales. K and V are stored as
// - f16: K in the blocked layout of kernels/attention.h (whole blocks up to n_past), V as
//   n_past rows of all KV heads; loads bit-exact;
// - q8: per KV head, K as n_past rows of head_dim int8 then n_past float scales; V as n_past x
//   n_head_kv rows of head_dim int8 then their float scales (symmetric, scale = max|x| / 127
//   per row); about half the bytes of f16, not bit-exact on load.
// The caller adds its own integrity check (a checksum over the bytes) when it stores them.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "docdsa/engine/result.h"
#include "docdsa/engine/session.h"

namespace docdsa {

// How K and V are stored (the indexer cache is stored as it is either way).
enum class KvStorage { kF16, kQ8 };
const char* kv_storage_name(KvStorage k);  // "f16", "q8"

// Bytes save_session_state writes for the session as it is now.
uint64_t session_state_bytes(const Session& s, KvStorage kv = KvStorage::kF16);

// Streams the state through `write` in consecutive pieces; stops at its first error.
Status save_session_state(const Session& s, const std::function<Status(const void* data, size_t size)>& write,
                          KvStorage kv = KvStorage::kF16);

// Replaces s's caches with the saved state; n_past becomes the saved count and the last
// logits are forgotten (decode the next tokens to get them). Fails, leaving s unchanged,
// when the bytes are malformed or were saved from a different model shape, attention mode,
// DSA, RoPE or context-extension setting, or do not fit in s's context.
Status load_session_state(Session& s, std::span<const uint8_t> bytes);

// The token count a saved state holds, or an error when `bytes` is not one.
Result<int> session_state_tokens(std::span<const uint8_t> bytes);
// How a saved state stores K and V.
Result<KvStorage> session_state_kv_storage(std::span<const uint8_t> bytes);

// Saves s's state with `kv` in memory and loads it back: the caches a stored context would
// reload as (measurements of f16 vs 8-bit storage: eval fidelity / eval qa --stored-kv).
Status reload_session_state(Session& s, KvStorage kv);

// Hash of everything besides the tokens that shapes the cached values of `s` (model shape,
// dense or sparse, DSA parameters, indexer projections, RoPE, context extension). Two
// sessions with the same signature produce the same caches for the same tokens.
uint64_t session_state_signature(const Session& s);

}  // namespace docdsa
