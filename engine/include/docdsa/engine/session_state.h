// Saving and loading a session's caches (KV, indexer) so that a document read once can be
// answered later, from another process, without reading it again. The state holds only the
// first n_past tokens (not the n_ctx capacity); it loads into any session of the same model
// and attention, RoPE and extension settings whose n_ctx holds those tokens.
//
// Format (little-endian): a fixed header (magic, version, model shape, n_past, a hash of
// the settings that shape the cached values), then per layer: K of each KV head (f16, the
// blocked layout of kernels/attention.h, whole blocks up to n_past), V (f16, n_past rows),
// and with an indexer cache its keys (kernels/indexer.h, whole blocks) and n_past scales.
// The caller adds its own integrity check (a checksum over the bytes) when it stores them.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "docdsa/engine/result.h"
#include "docdsa/engine/session.h"

namespace docdsa {

// Bytes save_session_state writes for the session as it is now.
uint64_t session_state_bytes(const Session& s);

// Streams the state through `write` in consecutive pieces; stops at its first error.
Status save_session_state(const Session& s, const std::function<Status(const void* data, size_t size)>& write);

// Replaces s's caches with the saved state; n_past becomes the saved count and the last
// logits are forgotten (decode the next tokens to get them). Fails, leaving s unchanged,
// when the bytes are malformed or were saved from a different model shape, attention mode,
// DSA, RoPE or context-extension setting, or do not fit in s's context.
Status load_session_state(Session& s, std::span<const uint8_t> bytes);

// The token count a saved state holds, or an error when `bytes` is not one.
Result<int> session_state_tokens(std::span<const uint8_t> bytes);

// Hash of everything besides the tokens that shapes the cached values of `s` (model shape,
// dense or sparse, DSA parameters, indexer projections, RoPE, context extension). Two
// sessions with the same signature produce the same caches for the same tokens.
uint64_t session_state_signature(const Session& s);

}  // namespace docdsa
