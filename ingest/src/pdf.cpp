#include "docdsa/ingest/pdf.h"

#include <poppler-qt6.h>

#include <QString>
#include <QVariant>
#include <spdlog/spdlog.h>
#include <filesystem>
#include <memory>

namespace docdsa::ingest {

namespace {
// Poppler reports recoverable damage on stderr; keep it in the log (-vv) instead.
void route_poppler_messages() {
  static const bool once = [] {
    Poppler::setDebugErrorFunction([](const QString& msg, const QVariant&) { spdlog::debug("poppler: {}", msg.toStdString()); }, QVariant());
    return true;
  }();
  (void)once;
}
}  // namespace

Result<PdfDocument> read_pdf(const std::string& path, const std::string& password) {
  route_poppler_messages();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return make_error(ErrorCode::kNotFound, path + ": no such file");
  // Poppler documents are not thread-safe: each call owns its own.
  std::unique_ptr<Poppler::Document> doc = Poppler::Document::load(QString::fromStdString(path), QByteArray::fromStdString(password),
                                                                    QByteArray::fromStdString(password));
  if (!doc) return make_error(ErrorCode::kCorrupt, path + ": not a readable PDF (damaged or not a PDF)");
  if (doc->isLocked())
    return make_error(ErrorCode::kInvalidArgument,
                      path + (password.empty() ? ": the PDF is encrypted and needs a password (use --password)" : ": wrong password: the PDF needs a password"));
  PdfDocument out;
  out.title = doc->info(QStringLiteral("Title")).toStdString();
  out.author = doc->info(QStringLiteral("Author")).toStdString();
  const int n = doc->numPages();
  if (n <= 0) return make_error(ErrorCode::kCorrupt, path + ": the PDF has no pages Poppler can read");
  for (int i = 0; i < n; ++i) {
    PdfPage p;
    p.number = i + 1;
    std::unique_ptr<Poppler::Page> page = doc->page(i);
    if (page) p.text = page->text(QRectF()).toStdString();
    p.has_text = p.text.find_first_not_of(" \t\r\n\f") != std::string::npos;
    out.pages.push_back(std::move(p));
  }
  return out;
}

}  // namespace docdsa::ingest
