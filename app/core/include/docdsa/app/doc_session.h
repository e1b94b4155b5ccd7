// Questions and summaries over a whole document: the code path both front ends run. The
// command line drives it with a progress bar and Ctrl-C, the GUI from a worker thread with a
// progress signal and a Stop button; neither has its own copy of the flow.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "docdsa/app/attention_options.h"
#include "docdsa/app/context_cache.h"
#include "docdsa/app/doc_prompt.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/sampler.h"
#include "docdsa/engine/session.h"
#include "docdsa/storage/library.h"

namespace docdsa::app {

inline constexpr int kQuestionBudget = 512;  // tokens reserved for a question and the template around it

// (done, total) while reading a document; returning false cancels.
using ProgressFn = std::function<bool(int64_t done, int64_t total)>;
// A piece of streamed answer text; returning false stops the answer.
using TextFn = std::function<bool(std::string_view piece)>;

struct DocSessionOptions {
  AttentionOptions attn;
  Range range;             // empty: the whole document
  int max_answer = 256;    // longest answer in tokens
  int ctx_limit = 131072;  // largest context
  int threads = 0;         // 0: all cores
  SamplerParams sampling = answer_sampling();  // greedy, with loop control
  // Read documents kept on disk (context_cache.h): a budget of 0 neither loads nor stores.
  uint64_t cache_budget = kDefaultCacheBudget;
  std::string cache_dir;  // empty: ContextCache::default_dir()
  KvStorage cache_kv = kDefaultKvStorage;  // how a new reading is stored (either loads)
};

struct Answer {
  std::string question, text, stop_reason;
  nlohmann::json sources = nlohmann::json::array();  // top passages (see top_sources)
  std::vector<float> heat;                           // per stored segment: share of the answer's selections (sums to 1, or all 0)
  CostReport cost;
  int prompt_tokens = 0;     // whole prompt: document + question
  int prefilled_tokens = 0;  // what this question had to prefill
  int reused_tokens = 0;     // document tokens whose caches were reused
  double prefill_seconds = 0, decode_seconds = 0;
  double reading_seconds = 0;  // the document's prefill, when this answer paid for it (the first one); else 0
  // Document tokens loaded from the stored context (a document read in an earlier run), and
  // what reading them cost when they were read (measured then): the work this answer skipped.
  int cached_tokens = 0;
  CostReport cached_reading;
  // Set by compare_with_dense: the same question answered with dense attention.
  bool compared = false, agrees = false;
  std::string dense_text;
};

// Records `dense`, the same question answered with dense attention: whether the answers agree,
// and its measured times in a's cost report (which then no longer estimates them). Like for
// like: when `a` reused the read document but `dense` had to read it first, that reading is
// left out of the dense time.
void compare_with_dense(Answer& a, const Answer& dense);

// One document opened for questions: the prompt up to the question is prefilled once; each
// question truncates back to it, so follow-ups only prefill the question.
class DocSession {
 public:
  // `cancel` (may be null) is polled while reading and while answering.
  static Result<std::unique_ptr<DocSession>> open(const Model& model, const storage::DocumentRow& row,
                                                  std::vector<storage::SegmentRow> segs, const DocSessionOptions& opts,
                                                  const ProgressFn& progress, const std::atomic<bool>* cancel);
  // stop_reason "cancelled" when `cancel` was set or on_text returned false.
  Result<Answer> ask(const std::string& question, const TextFn& on_text);

  const storage::DocumentRow& row() const { return row_; }
  const std::vector<storage::SegmentRow>& segments() const { return segs_; }
  AttentionMode mode() const { return mode_; }
  const DocSessionOptions& options() const { return opts_; }
  int doc_tokens() const { return static_cast<int>(prefix_ids_.size()); }
  double doc_prefill_seconds() const { return doc_cost_.prefill_seconds; }
  // The document came from the stored context cache instead of being read.
  bool from_cache() const { return from_cache_; }
  double load_seconds() const { return load_seconds_; }  // loading it from the cache

 private:
  explicit DocSession(const Model& m) : model_(m) {}
  const Model& model_;
  DocSessionOptions opts_;
  const std::atomic<bool>* cancel_ = nullptr;
  storage::DocumentRow row_;
  std::vector<storage::SegmentRow> segs_;
  DocText doc_;
  SplitPrompt split_;
  std::vector<TokenId> prefix_ids_;
  std::vector<int> tok_seg_;
  std::vector<int64_t> tok_char_;
  std::unique_ptr<Indexer> indexer_;
  std::unique_ptr<Session> session_;
  SourceCounter counter_;
  CostReport doc_cost_;
  AttentionMode mode_ = AttentionMode::kDsa;
  bool first_ = true;
  bool from_cache_ = false;
  double load_seconds_ = 0;
  CostReport cached_cost_;  // the stored reading cost, when from_cache_
};

// ---- summaries ------------------------------------------------------------------------------

struct SummaryOptions {
  AttentionOptions attn;
  int max_tokens = 320;
  int ctx = 131072;
  int threads = 0;
  SamplerParams sampling = answer_sampling();  // greedy, with loop control
};

struct Summary {
  std::string text;
  std::string stop_reason;  // of the (last) generation: "eos" when the model ended it
  nlohmann::json sources = nlohmann::json::array();
  std::vector<float> heat;  // per stored segment, as in Answer
  CostReport cost;
  int sections = 1;
};

// (label, done, total) while reading; returning false cancels.
using SummaryProgressFn = std::function<bool(const std::string& label, int64_t done, int64_t total)>;

// The whole document when it fits in opts.ctx; otherwise the largest runs of segments that
// fit, each summarised whole, and the section summaries combined (and labelled as such).
// Error kCancelled when cancelled.
Result<Summary> summarize_document(const Model& model, const storage::DocumentRow& row,
                                   const std::vector<storage::SegmentRow>& segs, const SummaryOptions& opts,
                                   const std::string& label, const SummaryProgressFn& progress, const std::atomic<bool>* cancel);

// The model file's name, as stored runs record it.
std::string model_name(const Model& model);
// Stores a finished answer (with its run: attention mode, model, costs, attention map), or a
// document's summary, each in one transaction.
Result<int64_t> store_answer(storage::Library& lib, const Model& model, int64_t doc_id, const Answer& a, AttentionMode mode);
Result<int64_t> store_summary(storage::Library& lib, const Model& model, const storage::DocumentRow& row, const Summary& s,
                              const std::string& attention);

// Indexer picks per layer that stand in for the selection when attention is dense (a
// document shorter than k, or dense mode): an eighth of the document, 16 to 256.
int observe_k(size_t doc_tokens);

}  // namespace docdsa::app
