// Ingesting files off the UI thread: a QtConcurrent task that reports its events through its
// QPromise (a file started, each PDF page read, the file's outcome), with its own library
// connection (SQLite handles are not shared across threads here; WAL lets both write).
// Cancelling the future stops within a page: the file being read is dropped whole (each
// file is stored in one transaction), the files already stored stay.
#pragma once

#include <QFuture>
#include <QMap>
#include <QString>
#include <QStringList>

#include "engine_worker.h"
#include "settings.h"

namespace docdsa::gui {

struct IngestEvent {
  // kCancelled: the file was being read when the task was cancelled; it was not stored.
  enum Kind { kStarted, kPage, kDone, kUnchanged, kFailed, kNeedsPassword, kCancelled } kind = kStarted;
  QString path;
  QString message;  // kFailed / kNeedsPassword: what went wrong, naming the file; kPage: "OCR" in the OCR pass
  qint64 doc_id = 0;
  int page = 0, pages = 0;  // kPage: pages read so far, of how many
};

// Files and folders (folders recursively; unsupported files skipped) into the library at
// `library`. `passwords` maps a PDF path to the password to try. Scanned PDF pages are read by
// OCR as `settings` say (the ones the window applied: GuiSettings::ocr, ocr_languages), on all
// cores, with kPage events per OCR page (message "OCR"); cancelling stops within a page and
// stores nothing of that file.
QFuture<IngestEvent> start_ingest(const QStringList& inputs, const QString& library, ModelPtr model,
                                  const QMap<QString, QString>& passwords, const GuiSettings& settings);

}  // namespace docdsa::gui

Q_DECLARE_METATYPE(docdsa::gui::IngestEvent)
