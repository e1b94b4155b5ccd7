// The engine side of the window: one worker object on its own thread that owns the model, the
// library connection it writes answers with, and the open document sessions (the prefilled
// caches that make follow-up questions cheap). A long-lived thread rather than a QtConcurrent
// task per question, because those caches must outlive each question. Every call is queued
// onto the worker's thread; issue(), cancel() and shutdown() are called from the UI thread.
#pragma once

#include <QObject>
#include <QString>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "docdsa/app/doc_session.h"
#include "docdsa/engine/model.h"
#include "docdsa/storage/library.h"
#include "settings.h"

namespace docdsa::gui {

// One finished answer or summary, as the window shows it.
struct AnswerView {
  qint64 doc_id = 0;
  bool summary = false;
  QString question, text, stop_reason, attention;
  nlohmann::json sources = nlohmann::json::array();
  std::vector<float> heat;  // per stored segment
  CostReport cost;
  int doc_tokens = 0, prompt_tokens = 0, prefilled_tokens = 0, reused_tokens = 0;
  int cached_tokens = 0;       // of reused_tokens, loaded from the stored context (read in an earlier run)
  CostReport cached_reading;   // what reading them cost then
  double prefill_seconds = 0, decode_seconds = 0;
  bool compared = false, agree = false;
  QString dense_answer;
  bool saved = false;
};

using ModelPtr = std::shared_ptr<const Model>;

class EngineWorker : public QObject {
  Q_OBJECT
 public:
  EngineWorker();
  ~EngineWorker() override;
  // Thread-safe: numbers a piece of work before its call is queued, so that a Stop pressed
  // while it waits in the queue still applies to it.
  quint64 issue() { return ++issued_; }
  // Thread-safe: stops the current read or answer at the next batch or token, and every piece
  // of work issued so far that has not started yet (it ends as stopped, without running).
  void cancel() {
    // This order, and begin()'s (clear the flag, then compare), cannot lose a Stop.
    stopped_through_.store(issued_.load());
    cancel_.store(true);
  }
  // Thread-safe: cancels, and refuses any work still queued (the window is closing).
  void shutdown() { shutdown_.store(true), cancel(); }
  // Thread-safe: a configure() call with new settings is queued; a first-load indexer
  // calibration for the old ones stops at its next batch so that they apply at once.
  void settings_coming() { configures_requested_.fetch_add(1); }

 public slots:
  void configure(const docdsa::gui::GuiSettings& s);  // reloads the model when its path changed
  // part: empty for the whole document, else pages ("3-7") or a time range ("00:10:00-00:20:00").
  // job: the number issue() gave it (0: not issued, only a Stop after it starts applies).
  void ask(qint64 doc_id, const QString& question, bool compare, const QString& part = {}, quint64 job = 0);
  void summarize(qint64 doc_id, quint64 job = 0);
  void forget(qint64 doc_id);  // the document was removed or changed: drop its caches

 signals:
  void modelChanged(docdsa::gui::ModelPtr model, const QString& description, const QString& error);
  void busy(bool on);
  void progress(const QString& what, qint64 done, qint64 total);
  void text(const QString& piece);
  // The work ended: busy(false) comes first, then exactly one of these. `stopped`: it ended
  // because of a Stop (before it started, or while reading); nothing was stored.
  void finished(const docdsa::gui::AnswerView& answer);
  void failed(const QString& message, bool stopped);
  void warning(const QString& message);  // something went wrong that did not end the work

 private:
  bool ensure_library(QString* error);
  // Starts a piece of work (busy on) and returns the document; on a problem, or when it was
  // stopped before it started, fails it.
  std::optional<storage::DocumentRow> begin(qint64 doc_id, quint64 job);
  void fail(const QString& message, bool stopped = false);  // busy off, then failed
  Result<app::DocSession*> session_for(const storage::DocumentRow& row, bool dense, const app::Range& range);
  std::atomic<quint64> configures_requested_{0}, configures_started_{0};  // see settings_coming()
  GuiSettings settings_;
  ModelPtr model_;
  std::string model_path_;
  std::unique_ptr<storage::Library> lib_;
  std::string lib_path_;
  // At most one document is kept open (its DSA session, and a dense one after a comparison):
  // a 128K document's KV cache is ~2.8 GiB. The key names the document and every option the
  // session was opened with, so a session is reused only when nothing it depends on changed.
  struct OpenDoc {
    std::unique_ptr<app::DocSession> session;
    std::string key;
  };
  OpenDoc sparse_, dense_;
  void drop_sessions();
  std::atomic<bool> cancel_{false};
  std::atomic<bool> shutdown_{false};
  std::atomic<quint64> issued_{0};           // the last job number handed out
  std::atomic<quint64> stopped_through_{0};  // jobs up to this number were stopped
};

// Splits a byte stream into whole UTF-8 characters (a token may end inside one).
class Utf8Stream {
 public:
  QString push(std::string_view bytes);

 private:
  std::string pending_;
};

}  // namespace docdsa::gui

Q_DECLARE_METATYPE(docdsa::gui::AnswerView)
Q_DECLARE_METATYPE(docdsa::gui::ModelPtr)
Q_DECLARE_METATYPE(docdsa::gui::GuiSettings)
