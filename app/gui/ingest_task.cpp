#include "ingest_task.h"

#include <QPromise>
#include <QtConcurrent/QtConcurrentRun>

#include "docdsa/app/library_common.h"
#include "settings.h"

namespace docdsa::gui {

QFuture<IngestEvent> start_ingest(const QStringList& inputs, const QString& library, ModelPtr model,
                                  const QMap<QString, QString>& passwords, const GuiSettings& settings) {
  ingest::OcrOptions ocr;
  ocr.enabled = settings.ocr;
  ocr.languages = settings.ocr_languages.trimmed().toStdString();
  return QtConcurrent::run([inputs, library, model, passwords, ocr](QPromise<IngestEvent>& promise) {
    std::vector<std::string> in;
    for (const QString& p : inputs) in.push_back(p.toStdString());
    std::vector<std::pair<std::string, std::string>> errors;
    const std::vector<std::string> files = app::expand(in, &errors);
    promise.setProgressRange(0, static_cast<int>(files.size()));
    for (const auto& [path, why] : errors)
      promise.addResult(
          IngestEvent{IngestEvent::kFailed, QString::fromStdString(path), QString::fromStdString(path + ": " + why), 0});
    if (files.empty()) return;
    if (!model) {
      for (const auto& f : files)
        promise.addResult(
            IngestEvent{IngestEvent::kFailed, QString::fromStdString(f),
                        QObject::tr("%1: no model loaded (the tokenizer counts each chunk's tokens); choose one in Settings")
                            .arg(QString::fromStdString(f)),
                        0});
      return;
    }
    auto lib = app::open_library_at(library.toStdString());
    if (!lib.ok()) {
      for (const auto& f : files)
        promise.addResult(
            IngestEvent{IngestEvent::kFailed, QString::fromStdString(f), QString::fromStdString(lib.error().message), 0});
      return;
    }
    int done = 0;
    for (const auto& f : files) {
      if (promise.isCanceled()) return;
      const QString path = QString::fromStdString(f);
      promise.addResult(IngestEvent{IngestEvent::kStarted, path, {}, 0});
      // Polled per PDF page, so that a cancel (or closing the window) waits for one page only.
      const auto on_page = [&](int page, int pages) {
        if (page > 0) promise.addResult(IngestEvent{IngestEvent::kPage, path, {}, 0, page, pages});
        return !promise.isCanceled();
      };
      app::IngestOptions io;
      io.password = passwords.value(path).toStdString();
      io.on_page = on_page;
      io.ocr = ocr;
      io.ocr.cancelled = [&promise] { return promise.isCanceled(); };
      // OCR pages come from the OCR workers, one call at a time; addResult is thread-safe.
      io.on_ocr_page = [&](int page, int pages) {
        promise.addResult(IngestEvent{IngestEvent::kPage, path, QStringLiteral("OCR"), 0, page, pages});
        return !promise.isCanceled();
      };
      auto r = app::ingest_one(**lib, model->tokenizer(), f, io);
      if (r.ok()) {
        promise.addResult(IngestEvent{
            r->outcome == storage::StoreOutcome::kUnchanged ? IngestEvent::kUnchanged : IngestEvent::kDone, path, {}, r->id});
      } else if (r.error().code == ErrorCode::kCancelled) {
        promise.addResult(IngestEvent{IngestEvent::kCancelled, path, QString::fromStdString(r.error().message), 0});
        return;
      } else {
        const std::string& m = r.error().message;
        const bool pw = m.find("needs a password") != std::string::npos;
        promise.addResult(
            IngestEvent{pw ? IngestEvent::kNeedsPassword : IngestEvent::kFailed, path, QString::fromStdString(m), 0});
      }
      promise.setProgressValue(++done);
    }
  });
}

}  // namespace docdsa::gui
