#include "engine_worker.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "docdsa/app/library_common.h"
#include "docdsa/engine/model_locator.h"

namespace docdsa::gui {

namespace fs = std::filesystem;

QString Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes);
  // Keep back an incomplete trailing sequence.
  size_t cut = pending_.size();
  for (size_t back = 1; back <= 3 && back <= pending_.size(); ++back) {
    const unsigned char c = static_cast<unsigned char>(pending_[pending_.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (need > back) cut = pending_.size() - back;
    break;
  }
  QString out = QString::fromUtf8(pending_.data(), static_cast<qsizetype>(cut));
  pending_.erase(0, cut);
  return out;
}

EngineWorker::EngineWorker() = default;
EngineWorker::~EngineWorker() = default;

namespace {
// What a document session depends on besides the document itself.
std::string options_key(const app::DocSessionOptions& o) {
  return o.attn.mode + ":" + std::to_string(o.attn.dsa.top_k) + ":" + std::to_string(o.attn.dsa.sinks) + ":" +
         std::to_string(o.attn.dsa.window) + ":" + std::to_string(o.ctx_limit) + ":" + std::to_string(o.max_answer) + ":" +
         std::to_string(o.threads) + ":" + o.range.label() + ":" + o.attn.device;
}
}  // namespace

void EngineWorker::drop_sessions() {
  sparse_ = {};
  dense_ = {};
}

void EngineWorker::configure(const GuiSettings& s) {
  configures_started_.fetch_add(1);
  // Caches opened under other attention settings are freed now, not at the next question.
  if (options_key(s.session_options()) != options_key(settings_.session_options())) drop_sessions();
  settings_ = s;
  if (s.library_path().toStdString() != lib_path_) lib_.reset();
  auto path = locate_model(s.model.toStdString());
  if (path.ok() && *path == model_path_ && model_) return;
  drop_sessions();
  if (!path.ok()) {
    model_.reset();
    model_path_.clear();
    emit modelChanged(nullptr, {}, QString::fromStdString(path.error().message));
    return;
  }
  auto m = Model::load(*path);
  if (!m.ok()) {
    model_.reset();
    model_path_.clear();
    emit modelChanged(nullptr, {}, QString::fromStdString(m.error().message));
    return;
  }
  model_ = ModelPtr(std::move(*m));
  model_path_ = *path;
  const auto& c = model_->config();
  emit modelChanged(model_,
                    tr("%1 — %2 layers, %3 heads, trained context %4")
                        .arg(QString::fromStdString(app::model_name(*model_)))
                        .arg(c.n_layer)
                        .arg(c.n_head)
                        .arg(c.n_ctx_train),
                    {});
  // A new model's DSA indexer is fitted now, once, with progress and Stop, rather than as a
  // silent pause inside its first question.
  const int rank = s.attention_options().rank;
  std::error_code ec;
  if (fs::exists(Indexer::default_path(*model_, rank), ec)) return;
  cancel_.store(false);
  emit busy(true);
  const KnownModel* known = find_known_model(fs::path(*path).filename().string());
  const QString what = tr("Calibrating the indexer for %1 (once)")
                           .arg(QString::fromStdString(known ? known->name : fs::path(*path).stem().string()));
  auto ix = Indexer::load_or_calibrate(*model_, rank, s.threads, shipped_calibration_text(), [&](int done, int total) {
    emit progress(what, done, total);
    return !cancel_.load() && !shutdown_.load() && configures_started_.load() >= configures_requested_.load();
  });
  emit busy(false);
  if (!ix.ok() && ix.error().code != ErrorCode::kCancelled)
    emit warning(tr("Could not calibrate the indexer: %1").arg(QString::fromStdString(ix.error().message)));
}

bool EngineWorker::ensure_library(QString* error) {
  const std::string want = settings_.library_path().toStdString();
  if (lib_ && lib_path_ == want) return true;
  auto lib = app::open_library_at(want);
  if (!lib.ok()) {
    *error = QString::fromStdString(lib.error().message);
    return false;
  }
  lib_ = std::move(*lib);
  lib_path_ = want;
  return true;
}

void EngineWorker::forget(qint64 doc_id) {
  const std::string prefix = std::to_string(doc_id) + ":";
  for (OpenDoc* d : {&sparse_, &dense_})
    if (d->key.rfind(prefix, 0) == 0) *d = {};
}

Result<app::DocSession*> EngineWorker::session_for(const storage::DocumentRow& row, bool dense, const app::Range& range) {
  app::DocSessionOptions o = settings_.session_options();
  if (dense) o.attn.mode = "dense";
  o.range = range;
  const std::string key = std::to_string(row.id) + ":" + row.content_hash + ":" + options_key(o);
  OpenDoc& slot = dense ? dense_ : sparse_;
  if (slot.session && slot.key == key) return slot.session.get();
  slot = {};                // free the old caches before allocating new ones
  if (!dense) dense_ = {};  // a dense twin belongs to the sparse session it was compared with
  TRY(std::vector<storage::SegmentRow> segs, lib_->segments(row.id));
  const QString what = dense ? tr("Reading with dense attention") : tr("Reading");
  TRY(std::unique_ptr<app::DocSession> s, app::DocSession::open(
                                              *model_, row, std::move(segs), o,
                                              [&](int64_t done, int64_t total) {
                                                emit progress(what, done, total);
                                                return true;
                                              },
                                              &cancel_));
  slot = {std::move(s), key};
  return slot.session.get();
}

void EngineWorker::fail(const QString& message, bool stopped) {
  emit busy(false);
  emit failed(message, stopped);
}

std::optional<storage::DocumentRow> EngineWorker::begin(qint64 doc_id, quint64 job) {
  if (shutdown_.load()) return std::nullopt;
  cancel_.store(false);
  emit busy(true);
  if (job != 0 && job <= stopped_through_.load()) {
    fail(tr("Stopped before it started."), true);
    return std::nullopt;
  }
  QString err;
  if (!model_) {
    err = tr("No model is loaded. Choose a GGUF file in Settings, or run scripts/fetch_model.sh.");
  } else if (ensure_library(&err)) {
    auto row = lib_->find(std::to_string(doc_id));
    if (row.ok()) return *row;
    err = QString::fromStdString(row.error().message);
  }
  fail(err);
  return std::nullopt;
}

void EngineWorker::ask(qint64 doc_id, const QString& question, bool compare, const QString& part, quint64 job) {
  auto row = begin(doc_id, job);
  if (!row) return;
  app::Range range;
  if (!part.trimmed().isEmpty()) {
    const std::string p = part.trimmed().toStdString();
    auto r = row->kind == "pdf" ? app::parse_pages(p) : app::parse_times(p);
    if (!r.ok()) return fail(QString::fromStdString(r.error().message));
    range = *r;
  }
  auto s = session_for(*row, settings_.attention == QLatin1String("dense"), range);
  if (!s.ok()) {
    const bool stopped = s.error().code == ErrorCode::kCancelled;
    return fail(stopped ? tr("Stopped while reading the document.") : QString::fromStdString(s.error().message), stopped);
  }
  app::DocSession* ds = *s;
  AnswerView v;
  v.doc_id = doc_id;
  v.question = question;
  v.doc_tokens = ds->doc_tokens();
  v.attention = QString::fromLatin1(attention_mode_name(ds->mode()));
  emit progress(tr("Answering"), 0, 0);
  Utf8Stream utf8;
  auto a = ds->ask(question.toStdString(), [&](std::string_view piece) {
    const QString t = utf8.push(piece);
    if (!t.isEmpty()) emit text(t);
    return !cancel_.load();
  });
  if (!a.ok()) return fail(QString::fromStdString(a.error().message));
  if (compare && a->stop_reason != "cancelled" && ds->mode() == AttentionMode::kDsa) {
    auto d = session_for(*row, true, range);
    if (d.ok()) {
      emit progress(tr("Answering with dense attention"), 0, 0);
      auto b = (*d)->ask(question.toStdString(), {});
      if (b.ok() && b->stop_reason != "cancelled") app::compare_with_dense(*a, *b);
    }
  }
  v.text = QString::fromStdString(a->text);
  v.stop_reason = QString::fromStdString(a->stop_reason);
  v.sources = a->sources;
  v.heat = a->heat;
  v.cost = a->cost;
  v.prompt_tokens = a->prompt_tokens;
  v.prefilled_tokens = a->prefilled_tokens;
  v.reused_tokens = a->reused_tokens;
  v.cached_tokens = a->cached_tokens;
  v.cached_reading = a->cached_reading;
  v.prefill_seconds = a->prefill_seconds;
  v.decode_seconds = a->decode_seconds;
  v.compared = a->compared;
  v.agree = a->agrees;
  v.dense_answer = QString::fromStdString(a->dense_text);
  if (a->stop_reason != "cancelled") {  // a stopped answer is shown, not stored
    auto st = app::store_answer(*lib_, *model_, doc_id, *a, ds->mode());
    if (!st.ok()) emit warning(tr("The answer was not saved: %1").arg(QString::fromStdString(st.error().message)));
    v.saved = st.ok();
  }
  emit busy(false);
  emit finished(v);
}

void EngineWorker::summarize(qint64 doc_id, quint64 job) {
  auto row = begin(doc_id, job);
  if (!row) return;
  auto segs = lib_->segments(doc_id);
  if (!segs.ok()) return fail(QString::fromStdString(segs.error().message));
  // A summary holds no follow-up state; free the question caches first.
  drop_sessions();
  const std::string title = row->title.empty() ? fs::path(row->path).filename().string() : row->title;
  auto sum = app::summarize_document(
      *model_, *row, *segs, settings_.summary_options(), title,
      [&](const std::string& label, int64_t done, int64_t total) {
        emit progress(tr("Summarising %1").arg(QString::fromStdString(label)), done, total);
        return true;
      },
      &cancel_);
  if (!sum.ok())
    return fail(sum.error().code == ErrorCode::kCancelled ? tr("Summary stopped.") : QString::fromStdString(sum.error().message),
                sum.error().code == ErrorCode::kCancelled);
  AnswerView v;
  v.doc_id = doc_id;
  v.summary = true;
  v.question = tr("Summary");
  v.text = QString::fromStdString(sum->text);
  emit text(v.text);
  v.sources = sum->sources;
  v.heat = sum->heat;
  v.cost = sum->cost;
  v.attention = QString::fromLatin1(attention_mode_name(sum->cost.mode));
  v.prompt_tokens = static_cast<int>(sum->cost.prompt_tokens);
  v.prefilled_tokens = v.prompt_tokens;
  v.prefill_seconds = sum->cost.prefill_seconds;
  v.decode_seconds = sum->cost.decode_seconds;
  auto st = app::store_summary(*lib_, *model_, *row, *sum, settings_.attention.toStdString());
  if (!st.ok()) emit warning(tr("The summary was not saved: %1").arg(QString::fromStdString(st.error().message)));
  v.saved = st.ok();
  emit busy(false);
  emit finished(v);
}

}  // namespace docdsa::gui
