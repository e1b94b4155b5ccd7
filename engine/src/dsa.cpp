// DSA's attention modes and the checks on its parameters. The indexer is in indexer.cpp, the
// selection at run time in attend.cpp and the backend's (cpu/dsa_select.cpp), the cost model
// in cost.cpp.
#include "docdsa/engine/dsa.h"

#include <cstdint>
#include <string>

namespace docdsa {
const char* attention_mode_name(AttentionMode m) {
  return m == AttentionMode::kDense ? "dense" : "dsa";
}

Status validate(const DsaParams& p) {
  if (p.top_k < 1)
    return make_error(ErrorCode::kInvalidArgument, "--topk must be at least 1 (got " + std::to_string(p.top_k) + ")");
  if (p.dense_layers < 0) return make_error(ErrorCode::kInvalidArgument, "--dense-layers must not be negative");
  if (p.sinks < 0) return make_error(ErrorCode::kInvalidArgument, "--sinks must not be negative");
  if (p.window < 1)
    return make_error(ErrorCode::kInvalidArgument, "--window must be at least 1 (a token always attends to itself)");
  if (static_cast<int64_t>(p.sinks) + p.window >= p.top_k)
    return make_error(ErrorCode::kInvalidArgument, "--sinks (" + std::to_string(p.sinks) + ") plus --window (" +
                                                       std::to_string(p.window) + ") must be smaller than --topk (" +
                                                       std::to_string(p.top_k) + ")");
  return {};
}

}  // namespace docdsa
