// The desktop window: library (left), reader with the attention heat strip (centre), and the
// ask / history / cost tabs (right). Heavy work never runs on the UI thread: ingest is a
// QtConcurrent task, the model runs on the EngineWorker's thread.
#pragma once

#include <QFutureWatcher>
#include <QMainWindow>
#include <QMap>
#include <QThread>
#include <QThreadPool>
#include <functional>
#include <memory>
#include <optional>

#include "docdsa/app/doc_prompt.h"
#include "docdsa/storage/library.h"
#include "engine_worker.h"
#include "ingest_task.h"
#include "settings.h"

class QCheckBox;
class QFrame;
class QLabel;
class QLineEdit;
class QListWidget;
class QProgressBar;
class QPushButton;
class QTableView;
class QTabWidget;
class QTextBrowser;
class QSortFilterProxyModel;

namespace docdsa::gui {

class CostPanel;
class LibraryModel;
class Reader;
struct HistoryDb;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  // Starts with `settings` (by default the saved ones).
  explicit MainWindow(const GuiSettings& settings = GuiSettings::load(), QWidget* parent = nullptr);
  ~MainWindow() override;

  // Files and folders to ingest (what drag-and-drop and File → Open do).
  void add_paths(const QStringList& paths);
  bool select_document(qint64 id);
  qint64 document_id_for_path(const QString& path) const;
  void ask(const QString& question);
  void summarize();
  void stop();
  void cancel_ingest();
  // Asked for a password-protected PDF's password; returns nullopt when the person cancels.
  // The default shows a password dialog.
  void set_password_provider(std::function<std::optional<QString>(const QString& path)> f) { password_provider_ = std::move(f); }
  void apply_settings(const GuiSettings& s);

  bool busy() const { return busy_; }
  bool ingesting() const { return ingest_.isRunning(); }
  bool ingest_cancelled() const { return ingest_.isCanceled(); }  // the last batch was cancelled
  bool model_loaded() const { return model_ != nullptr; }
  LibraryModel* library_model() const { return model_table_; }
  QTableView* library_view() const { return table_; }
  Reader* reader() const { return reader_; }
  QTextBrowser* answer_view() const { return answer_; }
  QListWidget* sources_list() const { return sources_; }
  QListWidget* history_list() const { return history_; }
  CostPanel* cost_panel() const { return cost_; }
  QTabWidget* tabs() const { return tabs_; }
  QPushButton* ask_button() const { return ask_btn_; }
  QLineEdit* question_edit() const { return question_; }
  QLineEdit* part_edit() const { return part_; }
  QLineEdit* search_edit() const { return search_; }
  QListWidget* search_hits() const { return hits_; }
  QString banner_text() const;
  QString last_error() const { return last_error_; }
  bool last_stopped() const { return last_stopped_; }  // the last work failed because of a Stop
  EngineWorker* worker() const { return worker_; }
  const std::optional<AnswerView>& last_answer() const { return last_answer_; }

 signals:
  void ingest_finished();
  void answer_finished();  // an answer or summary finished (or failed: see last_error())
  void model_ready(bool ok);

 protected:
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;
  void closeEvent(QCloseEvent* e) override;

 private:
  void build_ui();
  void open_library();
  void refresh_library();
  void refresh_instant();
  // Reads the current document's history off the UI thread; `then(current)` runs when it is
  // shown (current) or was superseded by a newer read or another document (not current).
  void refresh_history(std::function<void(bool current)> then = {});
  void show_record(const AnswerView& v);
  void show_sources(const nlohmann::json& sources);
  void update_costs(const CostReport* answer);
  void on_ingest_event(int index);
  void on_ingest_done();
  void on_model(ModelPtr m, const QString& description, const QString& error);
  void on_finished(const AnswerView& v);
  void on_failed(const QString& message, bool stopped);
  void set_busy(bool on);
  void show_banner(const QString& html, bool settings_button);
  void open_settings();
  void ask_password(const QString& path);
  void run_search(const QString& q);
  void remove_selected();
  void update_actions();
  void update_problems();
  void add_files_dialog();

  GuiSettings settings_;
  std::unique_ptr<storage::Library> lib_;  // the UI thread's own connection (reads)
  ModelPtr model_;
  app::Prices prices_;
  QThread engine_thread_;
  EngineWorker* worker_ = nullptr;
  QFutureWatcher<IngestEvent> ingest_;
  QStringList ingest_queue_;
  QMap<QString, QString> passwords_;
  QStringList password_pending_;
  std::function<std::optional<QString>(const QString&)> password_provider_;
  qint64 current_doc_ = 0;
  bool busy_ = false;
  bool closing_ = false;
  QString last_error_;
  bool last_stopped_ = false;
  std::optional<AnswerView> last_answer_;
  std::vector<AnswerView> records_;  // history of the current document, as shown
  QThreadPool history_pool_;
  std::shared_ptr<HistoryDb> history_db_;  // used on history_pool_ only
  quint64 history_gen_ = 0;
  quint64 instant_gen_ = 0;  // refresh_instant: the newest scan wins
  std::optional<CostReport> session_cost_;
  std::optional<CostReport> library_cost_;  // every stored run; read when the library opens, then kept up to date
  void load_library_cost();

  QFrame* banner_ = nullptr;
  QLabel* banner_label_ = nullptr;
  QPushButton* banner_button_ = nullptr;
  LibraryModel* model_table_ = nullptr;
  QTableView* table_ = nullptr;
  QLineEdit* search_ = nullptr;
  QListWidget* hits_ = nullptr;
  QLabel* problems_ = nullptr;
  QProgressBar* ingest_bar_ = nullptr;
  QPushButton* ingest_cancel_ = nullptr;
  Reader* reader_ = nullptr;
  QTabWidget* tabs_ = nullptr;
  QLineEdit* question_ = nullptr;
  QLineEdit* part_ = nullptr;
  QPushButton *ask_btn_ = nullptr, *stop_btn_ = nullptr, *summarize_btn_ = nullptr, *remove_btn_ = nullptr;
  QCheckBox* compare_ = nullptr;
  QTextBrowser* answer_ = nullptr;
  QListWidget* sources_ = nullptr;
  QListWidget* history_ = nullptr;
  QProgressBar* work_bar_ = nullptr;
  QLabel* work_label_ = nullptr;
  CostPanel* cost_ = nullptr;
};

}  // namespace docdsa::gui
