// The training-free lightning indexer (DESIGN.md, "DSA"): per layer and KV group, the top
// principal directions of the keys on calibration text (calibrate), kept in a sidecar file
// beside the user's cache (save, load, load_or_calibrate).
#include <xxhash.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "docdsa/base/paths.h"
#include "docdsa/engine/dsa.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"

namespace docdsa {
namespace fs = std::filesystem;

namespace {
constexpr char kMagic[8] = {'D', 'S', 'A', 'I', 'D', 'X', '0', '1'};
constexpr uint32_t kVersion = 1;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t n_layer, n_kv, head_dim, rank, n_calib;
  uint64_t fingerprint;
};
}  // namespace

uint64_t Indexer::fingerprint(const Model& model) {
  const ModelConfig& c = model.config();
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  const int32_t shape[] = {c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.n_rot, c.rope_neox ? 1 : 0};
  XXH3_64bits_update(st, shape, sizeof(shape));
  XXH3_64bits_update(st, &c.rope_base, sizeof(c.rope_base));
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = model.layer(il);
    for (const Weight* w : {&L.wq, &L.wk, &L.attn_norm}) {
      const size_t bytes = w->row_stride * static_cast<size_t>(w->n_out);
      XXH3_64bits_update(st, w->data, bytes);
    }
  }
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

Result<std::unique_ptr<Indexer>> Indexer::calibrate(const Model& model, std::span<const TokenId> tokens, int rank, int n_threads,
                                                    const std::function<bool(int, int)>& progress) {
  const ModelConfig& c = model.config();
  if (rank < 4 || rank % 4 != 0 || rank > c.head_dim)
    return make_error(ErrorCode::kInvalidArgument, "indexer rank must be a multiple of 4 between 4 and the head dimension (" +
                                                       std::to_string(c.head_dim) + "), got " + std::to_string(rank));
  if (tokens.size() < 64) return make_error(ErrorCode::kInvalidArgument, "calibration needs at least 64 tokens of text");
  const int hd = c.head_dim, n_kv = c.n_head_kv, kv_dim = n_kv * hd;
  // Second moments of each (layer, group)'s post-RoPE keys, accumulated in double.
  std::vector<Eigen::MatrixXd> mom(static_cast<size_t>(c.n_layer) * n_kv, Eigen::MatrixXd::Zero(hd, hd));
  SessionParams sp;
  sp.n_ctx = static_cast<int>(tokens.size());
  sp.n_threads = n_threads;
  sp.dsa.mode = AttentionMode::kDense;
  sp.qk_tap = [&](int il, int n, const float*, const float* k) {
    for (int g = 0; g < n_kv; ++g) {
      Eigen::MatrixXd& m = mom[static_cast<size_t>(il) * n_kv + g];
      Eigen::MatrixXd x(hd, n);
      for (int t = 0; t < n; ++t)
        for (int dd = 0; dd < hd; ++dd) x(dd, t) = k[static_cast<size_t>(t) * kv_dim + g * hd + dd];
      m.noalias() += x * x.transpose();
    }
  };
  TRY(std::unique_ptr<Session> s, Session::create(model, sp));
  TRY_STATUS(s->decode(tokens, Logits::kLast, progress));
  std::unique_ptr<Indexer> ix(new Indexer());
  ix->fingerprint_ = fingerprint(model);
  ix->n_layer_ = c.n_layer;
  ix->n_kv_ = n_kv;
  ix->head_dim_ = hd;
  ix->rank_ = rank;
  ix->n_calib_ = static_cast<int>(tokens.size());
  ix->p_.resize(static_cast<size_t>(c.n_layer) * n_kv * rank * hd);
  for (int il = 0; il < c.n_layer; ++il)
    for (int g = 0; g < n_kv; ++g) {
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(mom[static_cast<size_t>(il) * n_kv + g]);
      // Eigenvalues ascend: the last `rank` vectors are the principal directions.
      float* P = ix->p_.data() + (static_cast<size_t>(il) * n_kv + g) * rank * hd;
      for (int i = 0; i < rank; ++i) {
        const Eigen::VectorXd v = es.eigenvectors().col(hd - 1 - i);
        for (int dd = 0; dd < hd; ++dd) P[i * hd + dd] = static_cast<float>(v(dd));
      }
    }
  return ix;
}

Status Indexer::save(const std::string& path) const {
  std::error_code ec;
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kVersion;
  h.n_layer = static_cast<uint32_t>(n_layer_);
  h.n_kv = static_cast<uint32_t>(n_kv_);
  h.head_dim = static_cast<uint32_t>(head_dim_);
  h.rank = static_cast<uint32_t>(rank_);
  h.n_calib = static_cast<uint32_t>(n_calib_);
  h.fingerprint = fingerprint_;
  const uint64_t sum = XXH3_64bits(p_.data(), p_.size() * sizeof(float));
  // Write beside, then rename: a crash never leaves a half-written sidecar in place.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return make_error(ErrorCode::kIo, "cannot write indexer sidecar " + tmp);
    f.write(reinterpret_cast<const char*>(&h), sizeof(h));
    f.write(reinterpret_cast<const char*>(p_.data()), static_cast<std::streamsize>(p_.size() * sizeof(float)));
    f.write(reinterpret_cast<const char*>(&sum), sizeof(sum));
    f.flush();
    if (!f) return make_error(ErrorCode::kIo, "cannot write indexer sidecar " + tmp + " (disk full?)");
  }
  fs::rename(tmp, path, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot move indexer sidecar into place at " + path + ": " + ec.message());
  return {};
}

Result<std::unique_ptr<Indexer>> Indexer::load(const std::string& path, const Model& model) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(ErrorCode::kNotFound, "cannot open indexer sidecar " + path);
  Header h{};
  f.read(reinterpret_cast<char*>(&h), sizeof(h));
  if (!f || std::memcmp(h.magic, kMagic, 8) != 0)
    return make_error(ErrorCode::kCorrupt, path + " is not a DocDSA indexer sidecar");
  if (h.version != kVersion)
    return make_error(ErrorCode::kUnsupported,
                      path + ": indexer sidecar version " + std::to_string(h.version) + " is not supported");
  const ModelConfig& c = model.config();
  if (h.n_layer != static_cast<uint32_t>(c.n_layer) || h.n_kv != static_cast<uint32_t>(c.n_head_kv) ||
      h.head_dim != static_cast<uint32_t>(c.head_dim) || h.fingerprint != fingerprint(model))
    return make_error(ErrorCode::kInvalidArgument, "indexer sidecar " + path + " was made for a different model file than " +
                                                       model.path() + "; run: docdsa calibrate --force");
  if (h.rank < 4 || h.rank % 4 != 0 || h.rank > h.head_dim)
    return make_error(ErrorCode::kCorrupt, path + ": indexer rank " + std::to_string(h.rank) + " is invalid");
  std::unique_ptr<Indexer> ix(new Indexer());
  ix->fingerprint_ = h.fingerprint;
  ix->n_layer_ = static_cast<int>(h.n_layer);
  ix->n_kv_ = static_cast<int>(h.n_kv);
  ix->head_dim_ = static_cast<int>(h.head_dim);
  ix->rank_ = static_cast<int>(h.rank);
  ix->n_calib_ = static_cast<int>(h.n_calib);
  ix->p_.resize(static_cast<size_t>(h.n_layer) * h.n_kv * h.rank * h.head_dim);
  f.read(reinterpret_cast<char*>(ix->p_.data()), static_cast<std::streamsize>(ix->p_.size() * sizeof(float)));
  uint64_t sum = 0;
  f.read(reinterpret_cast<char*>(&sum), sizeof(sum));
  if (!f) return make_error(ErrorCode::kCorrupt, "indexer sidecar " + path + " is truncated; run: docdsa calibrate --force");
  if (sum != XXH3_64bits(ix->p_.data(), ix->p_.size() * sizeof(float)))
    return make_error(ErrorCode::kCorrupt,
                      "indexer sidecar " + path + " is damaged (checksum mismatch); run: docdsa calibrate --force");
  // Rows are unit eigenvectors, so every entry lies in [-1, 1]; larger ones (or NaN) would
  // overflow the indexer queries to inf/NaN.
  for (float v : ix->p_)
    if (!(std::fabs(v) <= 1.001f))
      return make_error(ErrorCode::kCorrupt,
                        "indexer sidecar " + path + " holds values outside [-1, 1]; run: docdsa calibrate --force");
  return ix;
}

std::string Indexer::default_path(const Model& model, int rank) {
  const std::string dir = xdg_cache_home();
  char fp[17];
  std::snprintf(fp, sizeof(fp), "%016llx", static_cast<unsigned long long>(fingerprint(model)));
  return dir + "/docdsa/indexers/" + fs::path(model.path()).stem().string() + "-" + fp + "-r" + std::to_string(rank) + ".dsaidx";
}

Result<std::vector<TokenId>> Indexer::calibration_tokens(const Model& model, const std::string& path, int max_tokens) {
  const std::string& p = path;
  if (p.empty()) return make_error(ErrorCode::kInvalidArgument, "no calibration text file given");
  std::ifstream f(p);
  if (!f) return make_error(ErrorCode::kIo, p + ": cannot read the calibration text");
  std::string text;
  for (std::string line; std::getline(f, line);)
    if (line.empty() || line[0] != '#') text += line + "\n";
  std::vector<TokenId> tokens = model.tokenizer().encode(text, true);
  if (static_cast<int>(tokens.size()) > max_tokens) tokens.resize(static_cast<size_t>(max_tokens));
  return tokens;
}

Result<std::unique_ptr<Indexer>> Indexer::load_or_calibrate(const Model& model, int rank, int n_threads,
                                                            const std::string& calibration_text,
                                                            const std::function<bool(int, int)>& progress) {
  const std::string path = default_path(model, rank);
  std::error_code ec;
  if (fs::exists(path, ec)) {
    auto ix = load(path, model);
    if (ix.ok() || ix.error().code == ErrorCode::kInvalidArgument) return ix;
    // A damaged cache entry is rebuilt rather than reported: it is ours, not the user's.
  }
  TRY(std::vector<TokenId> tokens, calibration_tokens(model, calibration_text, 4096));
  TRY(std::unique_ptr<Indexer> ix, calibrate(model, tokens, rank, n_threads, progress));
  TRY_STATUS(ix->save(path));
  return ix;
}

}  // namespace docdsa
