// The library as a table: stored documents, plus files being ingested or that failed, whose
// errors stay in their row (no dialog per file).
#pragma once

#include <QAbstractTableModel>
#include <QSet>
#include <QString>
#include <vector>

#include "docdsa/storage/library.h"

namespace docdsa::gui {

class LibraryModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column { kTitle, kType, kLength, kTokens, kStatus, kColumns };
  enum class State { kReady, kQueued, kIngesting, kFailed, kNeedsPassword };
  struct Row {
    storage::DocumentRow doc;  // doc.id == 0 until stored
    QString path;
    State state = State::kReady;
    QString message;
  };

  using QAbstractTableModel::QAbstractTableModel;
  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation o, int role) const override;

  // Replaces the stored documents (keeps pending and failed rows for other paths). `only`:
  // when non-empty, just these ids (a search).
  void set_documents(const std::vector<storage::DocumentRow>& docs, const QSet<qint64>& only = {}, bool filtered = false);
  void set_state(const QString& path, State s, const QString& message = {});
  void clear_failed();
  int drop_pending();  // removes queued rows and rows still being read (a cancelled batch); returns how many
  const Row* row_at(int r) const;
  int row_of_doc(qint64 id) const;
  int row_of_path(const QString& path) const;
  int count(State s) const;
  // Content hashes of the documents whose reading is stored for the current model: their
  // status says they answer at once.
  void set_instant(const QSet<QString>& content_hashes);

 private:
  std::vector<Row> rows_;
  QSet<QString> instant_;
};

QString format_duration(qint64 ms);

}  // namespace docdsa::gui
