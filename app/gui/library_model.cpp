#include "library_model.h"

#include <QBrush>
#include <QFileInfo>
#include <QLocale>

namespace docdsa::gui {

QString format_duration(qint64 ms) {
  if (ms < 0) return {};
  const qint64 s = ms / 1000;
  return s >= 3600 ? QStringLiteral("%1:%2:%3")
                         .arg(s / 3600)
                         .arg(s / 60 % 60, 2, 10, QLatin1Char('0'))
                         .arg(s % 60, 2, 10, QLatin1Char('0'))
                   : QStringLiteral("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
}

int LibraryModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}
int LibraryModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : kColumns;
}

QVariant LibraryModel::headerData(int section, Qt::Orientation o, int role) const {
  if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case kTitle:
      return tr("Document");
    case kType:
      return tr("Type");
    case kLength:
      return tr("Length");
    case kTokens:
      return tr("Tokens");
    case kStatus:
      return tr("Status");
    default:
      return {};
  }
}

QVariant LibraryModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= static_cast<int>(rows_.size())) return {};
  const Row& r = rows_[static_cast<size_t>(index.row())];
  const auto status = [&]() -> QString {
    switch (r.state) {
      case State::kReady: {
        QString s = r.doc.warnings.empty() ? tr("ready") : tr("ready (warnings)");
        if (r.doc.ocr_pages > 0) s += tr(" · OCR %1%").arg(r.doc.ocr_confidence, 0, 'f', 0);  // scanned: how sure the OCR was
        return instant_.contains(QString::fromStdString(r.doc.content_hash)) ? s + tr(" · answers at once") : s;
      }
      case State::kQueued:
        return tr("queued");
      case State::kIngesting:
        return r.message.isEmpty() ? tr("reading…") : tr("reading… %1").arg(r.message);
      case State::kFailed: {
        // The row names the file already: show the reason.
        QString why = r.message;
        if (why.startsWith(r.path + QStringLiteral(": "))) why = why.mid(r.path.size() + 2);
        return tr("failed: %1").arg(why);
      }
      case State::kNeedsPassword:
        return tr("needs a password (double-click)");
    }
    return {};
  };
  if (role == Qt::DisplayRole) {
    switch (index.column()) {
      case kTitle:
        return r.doc.id && !r.doc.title.empty() ? QString::fromStdString(r.doc.title) : QFileInfo(r.path).fileName();
      case kType:
        return r.doc.id ? QString::fromStdString(r.doc.kind).toUpper() : QFileInfo(r.path).suffix().toUpper();
      case kLength:
        if (!r.doc.id) return {};
        if (r.doc.kind == "pdf") return tr("%n page(s)", nullptr, static_cast<int>(r.doc.n_pages));
        if (r.doc.duration_ms >= 0) return format_duration(r.doc.duration_ms);
        return tr("%n part(s)", nullptr, static_cast<int>(r.doc.n_segments));
      case kTokens:
        return r.doc.id ? QLocale().toString(static_cast<qlonglong>(r.doc.n_tokens)) : QVariant();
      case kStatus:
        return status();
    }
  }
  if (role == Qt::ToolTipRole) {
    QString tip = r.path;
    if (!r.message.isEmpty()) tip += QStringLiteral("\n") + r.message;
    if (!r.doc.warnings.empty()) tip += QStringLiteral("\n") + QString::fromStdString(r.doc.warnings);
    return tip;
  }
  if (role == Qt::ForegroundRole && index.column() == kStatus) {
    if (r.state == State::kFailed) return QBrush(QColor(0xb0, 0x20, 0x20));
    if (r.state == State::kNeedsPassword) return QBrush(QColor(0xa0, 0x60, 0x00));
  }
  if (role == Qt::TextAlignmentRole && (index.column() == kTokens || index.column() == kLength))
    return QVariant(Qt::AlignRight | Qt::AlignVCenter);
  if (role == Qt::UserRole) return QVariant::fromValue(static_cast<qlonglong>(r.doc.id));
  return {};
}

void LibraryModel::set_instant(const QSet<QString>& content_hashes) {
  if (content_hashes == instant_) return;
  instant_ = content_hashes;
  if (!rows_.empty()) emit dataChanged(index(0, kStatus), index(static_cast<int>(rows_.size()) - 1, kStatus));
}

void LibraryModel::set_documents(const std::vector<storage::DocumentRow>& docs, const QSet<qint64>& only, bool filtered) {
  beginResetModel();
  std::vector<Row> keep;
  for (auto& r : rows_)
    if (r.state != State::kReady) keep.push_back(r);
  rows_.clear();
  QSet<QString> stored;
  for (const auto& d : docs) {
    if (filtered && !only.contains(d.id)) continue;
    rows_.push_back(Row{d, QString::fromStdString(d.path), State::kReady, {}});
    stored.insert(QString::fromStdString(d.path));
  }
  for (auto& r : keep)
    if (!stored.contains(r.path) && !filtered) rows_.push_back(r);
  endResetModel();
}

void LibraryModel::set_state(const QString& path, State s, const QString& message) {
  const int i = row_of_path(path);
  if (i < 0) {
    beginInsertRows({}, static_cast<int>(rows_.size()), static_cast<int>(rows_.size()));
    Row r;
    r.path = path;
    r.state = s;
    r.message = message;
    rows_.push_back(r);
    endInsertRows();
    return;
  }
  Row& r = rows_[static_cast<size_t>(i)];
  r.state = s;
  r.message = message;
  emit dataChanged(index(i, 0), index(i, kColumns - 1));
}

void LibraryModel::clear_failed() {
  beginResetModel();
  std::erase_if(rows_, [](const Row& r) { return r.state == State::kFailed; });
  endResetModel();
}

int LibraryModel::drop_pending() {
  beginResetModel();
  const auto n = std::erase_if(rows_, [](const Row& r) { return r.state == State::kQueued || r.state == State::kIngesting; });
  endResetModel();
  return static_cast<int>(n);
}

const LibraryModel::Row* LibraryModel::row_at(int r) const {
  return r >= 0 && r < static_cast<int>(rows_.size()) ? &rows_[static_cast<size_t>(r)] : nullptr;
}
int LibraryModel::row_of_doc(qint64 id) const {
  for (size_t i = 0; i < rows_.size(); ++i)
    if (rows_[i].doc.id == id) return static_cast<int>(i);
  return -1;
}
int LibraryModel::row_of_path(const QString& path) const {
  for (size_t i = 0; i < rows_.size(); ++i)
    if (rows_[i].path == path) return static_cast<int>(i);
  return -1;
}
int LibraryModel::count(State s) const {
  int n = 0;
  for (const auto& r : rows_) n += r.state == s;
  return n;
}

}  // namespace docdsa::gui
