// Ingesting files off the UI thread: a QtConcurrent task that reports one event per file
// through its QPromise (progress, results, cancel between files), with its own library
// connection (SQLite handles are not shared across threads here; WAL lets both write).
#pragma once

#include <QFuture>
#include <QMap>
#include <QString>
#include <QStringList>

#include "engine_worker.h"

namespace docdsa::gui {

struct IngestEvent {
  enum Kind { kStarted, kDone, kUnchanged, kFailed, kNeedsPassword } kind = kStarted;
  QString path;
  QString message;  // kFailed / kNeedsPassword: what went wrong, naming the file
  qint64 doc_id = 0;
};

// Files and folders (folders recursively; unsupported files skipped) into the library at
// `library`. `passwords` maps a PDF path to the password to try.
QFuture<IngestEvent> start_ingest(const QStringList& inputs, const QString& library, ModelPtr model,
                                  const QMap<QString, QString>& passwords);

}  // namespace docdsa::gui

Q_DECLARE_METATYPE(docdsa::gui::IngestEvent)
