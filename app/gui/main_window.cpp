#include "main_window.h"

#include <QApplication>
#include <QCheckBox>
#include <QCloseEvent>
#include <QDir>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFrame>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollBar>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>
#include <QTextBrowser>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>

#include "async.h"
#include "cost_panel.h"
#include "docdsa/app/context_cache.h"
#include "docdsa/app/json_text.h"
#include "docdsa/app/library_common.h"
#include "heat_strip.h"
#include "library_model.h"
#include "reader.h"
#include "settings_dialog.h"

namespace docdsa::gui {

namespace {
QString clean_path(const QString& p) {
  return QDir::cleanPath(QFileInfo(p).absoluteFilePath());
}
QString q(const std::string& s) {
  return QString::fromStdString(s);
}
void accumulate(std::optional<CostReport>& total, const CostReport& c) {
  if (total)
    total->add(c);
  else
    total = c;
}
}  // namespace

// The history pool's own connection (SQLite handles stay on the thread that uses them).
struct HistoryDb {
  std::string path;
  std::unique_ptr<storage::Library> lib;
};

MainWindow::MainWindow(const GuiSettings& settings, QWidget* parent) : QMainWindow(parent) {
  qRegisterMetaType<AnswerView>();
  qRegisterMetaType<ModelPtr>();
  qRegisterMetaType<GuiSettings>();
  history_pool_.setMaxThreadCount(1);  // one connection, used by one thread at a time
  history_db_ = std::make_shared<HistoryDb>();
  setWindowTitle(tr("DocDSA"));
  setAcceptDrops(true);
  resize(1500, 900);
  build_ui();

  worker_ = new EngineWorker();
  worker_->moveToThread(&engine_thread_);
  connect(&engine_thread_, &QThread::finished, worker_, &QObject::deleteLater);
  connect(worker_, &EngineWorker::modelChanged, this, &MainWindow::on_model);
  connect(worker_, &EngineWorker::busy, this, &MainWindow::set_busy);
  connect(worker_, &EngineWorker::text, this, [this](const QString& t) {
    QTextCursor c = answer_->textCursor();
    c.movePosition(QTextCursor::End);
    c.insertText(t);
    answer_->verticalScrollBar()->setValue(answer_->verticalScrollBar()->maximum());
  });
  connect(worker_, &EngineWorker::progress, this, [this](const QString& what, qint64 done, qint64 total) {
    work_label_->setText(total > 0 ? tr("%1: %2 of %3 tokens").arg(what).arg(done).arg(total) : what + QStringLiteral("…"));
    work_bar_->setRange(0, total > 0 ? 1000 : 0);
    if (total > 0) work_bar_->setValue(static_cast<int>(1000 * done / total));
  });
  connect(worker_, &EngineWorker::finished, this, &MainWindow::on_finished);
  connect(worker_, &EngineWorker::failed, this, &MainWindow::on_failed);
  connect(worker_, &EngineWorker::warning, this, [this](const QString& m) {
    show_banner(m.toHtmlEscaped(), false);
    statusBar()->showMessage(m, 10000);
  });
  engine_thread_.setObjectName(QStringLiteral("docdsa-engine"));
  engine_thread_.start();

  connect(&ingest_, &QFutureWatcher<IngestEvent>::resultReadyAt, this, &MainWindow::on_ingest_event);
  connect(&ingest_, &QFutureWatcher<IngestEvent>::progressRangeChanged, ingest_bar_, &QProgressBar::setRange);
  connect(&ingest_, &QFutureWatcher<IngestEvent>::progressValueChanged, ingest_bar_, &QProgressBar::setValue);
  connect(&ingest_, &QFutureWatcher<IngestEvent>::finished, this, &MainWindow::on_ingest_done);

  password_provider_ = [this](const QString& path) -> std::optional<QString> {
    bool ok = false;
    const QString pw =
        QInputDialog::getText(this, tr("Password needed"),
                              tr("%1 is protected by a password. Enter it to add the document:").arg(QFileInfo(path).fileName()),
                              QLineEdit::Password, {}, &ok);
    if (!ok) return std::nullopt;
    return pw;
  };
  apply_settings(settings);
}

MainWindow::~MainWindow() {
  worker_->shutdown();
  ingest_.cancel();
  ingest_.waitForFinished();
  history_pool_.clear();
  history_pool_.waitForDone();
  engine_thread_.quit();
  engine_thread_.wait();
}

void MainWindow::build_ui() {
  // Menus.
  auto* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&Add Files…"), QKeySequence::Open, this, &MainWindow::add_files_dialog);
  file->addAction(tr("Add &Folder…"), this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, tr("Add a folder (recursively)"), QDir::homePath());
    if (!d.isEmpty()) add_paths({d});
  });
  file->addAction(tr("&Remove Document"), QKeySequence::Delete, this, &MainWindow::remove_selected);
  file->addSeparator();
  file->addAction(tr("&Settings…"), QKeySequence::Preferences, this, &MainWindow::open_settings);
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
  auto* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About DocDSA"), this, [this] {
    QMessageBox::about(
        this, tr("About DocDSA"),
        tr("<b>DocDSA %1</b><p>Whole-document answers from a local language model with DeepSeek-style sparse "
           "attention: a lightning indexer scores every earlier token, the top-k are kept, and exact attention runs over "
           "those only. The heat strip shows where those selections fell.</p>")
            .arg(QApplication::applicationVersion()));
  });

  auto* central = new QWidget(this);
  auto* v = new QVBoxLayout(central);
  banner_ = new QFrame(central);
  banner_->setStyleSheet(QStringLiteral("QFrame{background:#fff4ce;border:1px solid #e0c060;border-radius:4px}"));
  auto* bl = new QHBoxLayout(banner_);
  banner_label_ = new QLabel(banner_);
  banner_label_->setWordWrap(true);
  banner_label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  banner_button_ = new QPushButton(tr("Open Settings…"), banner_);
  auto* dismiss = new QPushButton(tr("Dismiss"), banner_);
  bl->addWidget(banner_label_, 1);
  bl->addWidget(banner_button_);
  bl->addWidget(dismiss);
  connect(banner_button_, &QPushButton::clicked, this, &MainWindow::open_settings);
  connect(dismiss, &QPushButton::clicked, banner_, &QWidget::hide);
  banner_->hide();
  v->addWidget(banner_);

  auto* split = new QSplitter(Qt::Horizontal, central);
  // Library.
  auto* left = new QWidget(split);
  auto* lv = new QVBoxLayout(left);
  lv->setContentsMargins(0, 0, 0, 0);
  search_ = new QLineEdit(left);
  search_->setPlaceholderText(tr("Search the library (full text)…"));
  search_->setClearButtonEnabled(true);
  lv->addWidget(search_);
  model_table_ = new LibraryModel(left);
  table_ = new QTableView(left);
  table_->setModel(model_table_);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->verticalHeader()->hide();
  // Title at a fixed, adjustable width; the status (with any error) takes the rest.
  table_->horizontalHeader()->setSectionResizeMode(LibraryModel::kTitle, QHeaderView::Interactive);
  table_->horizontalHeader()->resizeSection(LibraryModel::kTitle, 170);
  for (int c : {LibraryModel::kType, LibraryModel::kLength, LibraryModel::kTokens})
    table_->horizontalHeader()->setSectionResizeMode(c, QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(LibraryModel::kStatus, QHeaderView::Stretch);
  table_->setWordWrap(false);
  table_->setTextElideMode(Qt::ElideRight);
  lv->addWidget(table_, 3);
  problems_ = new QLabel(left);  // the files that could not be added, with the reasons, in full
  problems_->setWordWrap(true);
  problems_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  problems_->setStyleSheet(QStringLiteral("color:#8a1c1c"));
  problems_->hide();
  lv->addWidget(problems_);
  hits_ = new QListWidget(left);
  hits_->hide();
  lv->addWidget(hits_, 2);
  auto* lb = new QHBoxLayout();
  auto* add = new QPushButton(tr("Add…"), left);
  add->setToolTip(tr("Add PDFs, transcripts or text files (or drop them on the window)"));
  remove_btn_ = new QPushButton(tr("Remove"), left);
  lb->addWidget(add);
  lb->addWidget(remove_btn_);
  lb->addStretch();
  lv->addLayout(lb);
  auto* ib = new QHBoxLayout();
  ingest_bar_ = new QProgressBar(left);
  ingest_bar_->setFormat(tr("Adding %v of %m"));
  ingest_cancel_ = new QPushButton(tr("Cancel"), left);
  ib->addWidget(ingest_bar_, 1);
  ib->addWidget(ingest_cancel_);
  ingest_bar_->hide(), ingest_cancel_->hide();
  lv->addLayout(ib);
  connect(add, &QPushButton::clicked, this, &MainWindow::add_files_dialog);
  connect(remove_btn_, &QPushButton::clicked, this, &MainWindow::remove_selected);
  connect(ingest_cancel_, &QPushButton::clicked, this, &MainWindow::cancel_ingest);
  connect(search_, &QLineEdit::textChanged, this, &MainWindow::run_search);
  connect(table_->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex& cur) {
    const auto* r = model_table_->row_at(cur.row());
    if (r && r->doc.id) select_document(r->doc.id);
    update_actions();
  });
  connect(table_, &QTableView::doubleClicked, this, [this](const QModelIndex& i) {
    const auto* r = model_table_->row_at(i.row());
    if (r && r->state == LibraryModel::State::kNeedsPassword) ask_password(r->path);
  });
  connect(hits_, &QListWidget::itemActivated, this, [this](QListWidgetItem* it) {
    const qint64 id = it->data(Qt::UserRole).toLongLong();
    if (id != current_doc_) select_document(id);
    const int seg = it->data(Qt::UserRole + 1).toInt();
    if (seg > 0) reader_->go_to_source({{"page", seg}});
  });

  // Reader.
  reader_ = new Reader(split);
  connect(reader_, &Reader::status, this, [this](const QString& m) { statusBar()->showMessage(m, 6000); });

  // Ask, history, cost.
  tabs_ = new QTabWidget(split);
  auto* askw = new QWidget(tabs_);
  auto* av = new QVBoxLayout(askw);
  question_ = new QLineEdit(askw);
  question_->setPlaceholderText(tr("Ask about the whole document…"));
  av->addWidget(question_);
  part_ = new QLineEdit(askw);
  part_->setPlaceholderText(tr("Read the whole document, or only pages (3-7) or a time range (00:10:00-00:20:00)"));
  part_->setClearButtonEnabled(true);
  part_->setToolTip(tr("Documents longer than the context length can be asked about one part at a time"));
  av->addWidget(part_);
  auto* ab = new QHBoxLayout();
  ask_btn_ = new QPushButton(tr("Ask"), askw);
  ask_btn_->setDefault(true);
  stop_btn_ = new QPushButton(tr("Stop"), askw);
  stop_btn_->setShortcut(QKeySequence(Qt::Key_Escape));
  compare_ = new QCheckBox(tr("Compare with dense"), askw);
  compare_->setObjectName(QStringLiteral("compare"));
  compare_->setToolTip(tr("Also answer with dense attention: shows whether the answers agree and the measured dense time"));
  summarize_btn_ = new QPushButton(tr("Summarize"), askw);
  ab->addWidget(ask_btn_);
  ab->addWidget(stop_btn_);
  ab->addWidget(compare_);
  ab->addStretch();
  ab->addWidget(summarize_btn_);
  av->addLayout(ab);
  work_label_ = new QLabel(askw);
  work_bar_ = new QProgressBar(askw);
  work_bar_->setTextVisible(false);
  work_bar_->setMaximumHeight(8);
  av->addWidget(work_label_);
  av->addWidget(work_bar_);
  answer_ = new QTextBrowser(askw);
  answer_->setPlaceholderText(tr("The answer appears here as it is written."));
  av->addWidget(answer_, 3);
  av->addWidget(new QLabel(tr("Sources — where the model's sparse attention went while answering:"), askw));
  sources_ = new QListWidget(askw);
  sources_->setWordWrap(true);
  av->addWidget(sources_, 2);
  tabs_->addTab(askw, tr("Ask"));
  history_ = new QListWidget(tabs_);
  history_->setWordWrap(true);
  tabs_->addTab(history_, tr("History"));
  cost_ = new CostPanel(tabs_);
  tabs_->addTab(cost_, tr("Cost savings"));
  connect(ask_btn_, &QPushButton::clicked, this, [this] { ask(question_->text()); });
  connect(question_, &QLineEdit::returnPressed, this, [this] {
    if (ask_btn_->isEnabled()) ask(question_->text());
  });
  connect(stop_btn_, &QPushButton::clicked, this, &MainWindow::stop);
  connect(summarize_btn_, &QPushButton::clicked, this, &MainWindow::summarize);
  connect(sources_, &QListWidget::currentRowChanged, this, [this](int row) {
    if (!last_answer_ || row < 0 || row >= static_cast<int>(last_answer_->sources.size())) return;
    reader_->go_to_source(last_answer_->sources[static_cast<size_t>(row)]);
  });
  connect(history_, &QListWidget::currentRowChanged, this, [this](int row) {
    if (row >= 0 && row < static_cast<int>(records_.size())) show_record(records_[static_cast<size_t>(row)]);
  });

  split->addWidget(left);
  split->addWidget(reader_);
  split->addWidget(tabs_);
  split->setStretchFactor(0, 2);
  split->setStretchFactor(1, 4);
  split->setStretchFactor(2, 3);
  split->setSizes({430, 560, 510});
  split->setObjectName(QStringLiteral("main_splitter"));
  // Window geometry and pane sizes as the person left them.
  QSettings st;
  restoreGeometry(st.value(QStringLiteral("window/geometry")).toByteArray());
  split->restoreState(st.value(QStringLiteral("window/splitter")).toByteArray());
  v->addWidget(split, 1);
  setCentralWidget(central);
  statusBar()->showMessage(tr("Starting…"));
  set_busy(false);
}

void MainWindow::add_files_dialog() {
  const QStringList f = QFileDialog::getOpenFileNames(this, tr("Add documents"), QDir::homePath(),
                                                      tr("Documents (*.pdf *.srt *.vtt *.txt *.md);;All files (*)"));
  if (!f.isEmpty()) add_paths(f);
}

QString MainWindow::banner_text() const {
  return banner_->isHidden() ? QString() : banner_label_->text();
}

void MainWindow::show_banner(const QString& html, bool settings_button) {
  banner_label_->setText(html);
  banner_button_->setVisible(settings_button);
  banner_->show();
}

void MainWindow::apply_settings(const GuiSettings& s) {
  settings_ = s;
  banner_->hide();
  auto prices = app::load_prices(s.prices.toStdString());
  if (prices.ok())
    prices_ = *prices;
  else
    show_banner(tr("<b>Price table not loaded:</b> %1").arg(q(prices.error().message).toHtmlEscaped()), true);
  cost_->set_prices(prices_);
  open_library();
  refresh_instant();  // the budget may have changed (0: nothing is kept)
  worker_->settings_coming();
  QMetaObject::invokeMethod(
      worker_, [w = worker_, s] { w->configure(s); }, Qt::QueuedConnection);
}

void MainWindow::open_library() {
  lib_.reset();
  auto lib = app::open_library_at(settings_.library_path().toStdString());
  if (!lib.ok()) {
    show_banner(tr("<b>The library could not be opened.</b> %1<br>Choose another library file in Settings, or close the program "
                   "that holds it locked.")
                    .arg(q(lib.error().message).toHtmlEscaped()),
                true);
    model_table_->set_documents({});
    return;
  }
  lib_ = std::move(*lib);
  load_library_cost();
  refresh_library();
}

void MainWindow::load_library_cost() {
  library_cost_.reset();
  if (auto costs = lib_->run_costs(); costs.ok())
    for (const auto& c : *costs)
      if (auto j = nlohmann::json::parse(c, nullptr, false); j.is_object()) accumulate(library_cost_, app::cost_from_json(j));
}

void MainWindow::refresh_library() {
  if (!lib_) return;
  auto docs = lib_->list();
  if (!docs.ok()) {
    show_banner(tr("<b>The library could not be read:</b> %1").arg(q(docs.error().message).toHtmlEscaped()), false);
    return;
  }
  const qint64 keep = current_doc_;
  model_table_->set_documents(*docs);  // the "answers at once" marks are kept (by content hash)
  if (keep) {
    const int r = model_table_->row_of_doc(keep);
    if (r >= 0) {
      const QSignalBlocker b(table_->selectionModel());
      table_->selectRow(r);
    }
  }
  statusBar()->showMessage(tr("%n document(s) in %1", nullptr, static_cast<int>(docs->size())).arg(settings_.library_path()));
}

void MainWindow::on_model(ModelPtr m, const QString& description, const QString& error) {
  model_ = std::move(m);
  if (!model_) {
    show_banner(tr("<b>No model loaded.</b> %1<br>Choose any llama-family GGUF file in Settings, or download the default model "
                   "with <code>scripts/fetch_model.sh</code> (or <code>scripts/demo.sh</code>).")
                    .arg(error.toHtmlEscaped()),
                true);
    statusBar()->showMessage(tr("No model"));
  } else {
    statusBar()->showMessage(tr("Model: %1").arg(description), 8000);
    cost_->set_model(model_.get(), settings_.top_k, Indexer::kDefaultRank);
  }
  refresh_instant();
  update_actions();
  emit model_ready(model_ != nullptr);
}

// Marks the documents whose reading is stored for this model (context_cache.h): they answer at
// once. Only when that can change (a reading stored, another model or budget); the scan of
// the stored entries runs on a pool thread, and the newest request wins.
void MainWindow::refresh_instant() {
  const quint64 gen = ++instant_gen_;
  if (!model_ || settings_.cache_budget_gb <= 0) {
    model_table_->set_instant({});
    return;
  }
  when_done(QtConcurrent::run([m = model_] {
              QSet<QString> hashes;
              for (const auto& h : app::ContextCache().documents(*m)) hashes.insert(QString::fromStdString(h));
              return hashes;
            }),
            this, [this, gen](const QSet<QString>& hashes) {
              if (gen == instant_gen_) model_table_->set_instant(hashes);
            });
}

void MainWindow::update_actions() {
  const bool doc = current_doc_ != 0;
  ask_btn_->setEnabled(doc && model_ && !busy_);
  summarize_btn_->setEnabled(doc && model_ && !busy_);
  question_->setEnabled(doc && !busy_);
  stop_btn_->setEnabled(busy_);
  remove_btn_->setEnabled(table_->currentIndex().isValid() && !busy_);
  if (!model_)
    ask_btn_->setToolTip(tr("No model: open Settings"));
  else if (!doc)
    ask_btn_->setToolTip(tr("Select a document first"));
  else
    ask_btn_->setToolTip(tr("Ask about the whole document (Enter)"));
}

// ---- ingest ---------------------------------------------------------------------------------

void MainWindow::add_paths(const QStringList& paths) {
  for (const QString& p : paths) {
    const QString c = clean_path(p);
    if (QFileInfo(c).isFile()) model_table_->set_state(c, LibraryModel::State::kQueued);
    ingest_queue_ << c;
  }
  if (ingest_.isRunning()) return;  // picked up when the current batch ends
  const QStringList batch = ingest_queue_;
  ingest_queue_.clear();
  if (batch.isEmpty()) return;
  ingest_bar_->setRange(0, 0);
  ingest_bar_->show(), ingest_cancel_->show();
  ingest_.setFuture(start_ingest(batch, settings_.library_path(), model_, passwords_, settings_));
}

void MainWindow::cancel_ingest() {
  ingest_queue_.clear();
  ingest_.cancel();  // stops within a page; the file being read is stored whole or not at all
}

void MainWindow::on_ingest_event(int index) {
  const IngestEvent e = ingest_.resultAt(index);
  switch (e.kind) {
    case IngestEvent::kStarted:
      model_table_->set_state(e.path, LibraryModel::State::kIngesting);
      break;
    case IngestEvent::kPage:
      model_table_->set_state(e.path, LibraryModel::State::kIngesting,
                              (e.message == QLatin1String("OCR") ? tr("OCR page %1 of %2") : tr("page %1 of %2")).arg(e.page).arg(e.pages));
      break;
    case IngestEvent::kCancelled:  // dropped with the other pending rows when the batch ends
      break;
    case IngestEvent::kDone:
    case IngestEvent::kUnchanged:
      model_table_->set_state(e.path, LibraryModel::State::kReady);
      QMetaObject::invokeMethod(
          worker_, [w = worker_, id = e.doc_id] { w->forget(id); }, Qt::QueuedConnection);
      refresh_library();
      break;
    case IngestEvent::kFailed:
      model_table_->set_state(e.path, LibraryModel::State::kFailed, e.message);
      break;
    case IngestEvent::kNeedsPassword:
      model_table_->set_state(e.path, LibraryModel::State::kNeedsPassword, e.message);
      if (!password_pending_.contains(e.path)) password_pending_ << e.path;
      break;
  }
}

void MainWindow::on_ingest_done() {
  ingest_bar_->hide(), ingest_cancel_->hide();
  if (ingest_.isCanceled()) {
    const int dropped = model_table_->drop_pending();
    statusBar()->showMessage(
        tr("Adding cancelled: %n file(s) not added; the documents already added are kept.", nullptr, dropped), 10000);
  }
  refresh_library();
  const int failed = model_table_->count(LibraryModel::State::kFailed);
  if (failed && !ingest_.isCanceled())
    statusBar()->showMessage(tr("%n file(s) could not be added — see the Status column", nullptr, failed), 10000);
  update_problems();
  emit ingest_finished();
  // Passwords are asked for once the batch is done, one file at a time (never a dialog storm).
  if (!closing_ && !password_pending_.isEmpty()) {
    const QString p = password_pending_.takeFirst();
    QMetaObject::invokeMethod(
        this, [this, p] { ask_password(p); }, Qt::QueuedConnection);
  }
  if (!ingest_queue_.isEmpty() && !closing_) add_paths({});
}

void MainWindow::update_problems() {
  QStringList lines;
  for (int r = 0; r < model_table_->rowCount(); ++r) {
    const auto* row = model_table_->row_at(r);
    if (row->state == LibraryModel::State::kFailed) lines << row->message.toHtmlEscaped();
    if (row->state == LibraryModel::State::kNeedsPassword)
      lines << tr("%1: needs a password (double-click its row)").arg(row->path.toHtmlEscaped());
  }
  problems_->setVisible(!lines.isEmpty());
  problems_->setText(tr("<b>Not added:</b><br>") + lines.join(QStringLiteral("<br>")));
}

void MainWindow::ask_password(const QString& path) {
  if (!password_provider_) return;
  const auto pw = password_provider_(path);
  if (!pw) {
    statusBar()->showMessage(
        tr("%1 was not added (no password). Double-click its row to try again.").arg(QFileInfo(path).fileName()), 8000);
    return;
  }
  passwords_[path] = *pw;
  add_paths({path});
}

void MainWindow::remove_selected() {
  const auto* r = model_table_->row_at(table_->currentIndex().row());
  if (!r) return;
  if (!r->doc.id) {  // a failed or pending file: just drop the row
    model_table_->clear_failed();
    update_problems();
    return;
  }
  const qint64 id = r->doc.id;
  const QString title = model_table_->data(model_table_->index(table_->currentIndex().row(), 0), Qt::DisplayRole).toString();
  if (QMessageBox::question(
          this, tr("Remove document"),
          tr("Remove “%1” from the library, with its questions, answers and summaries? The file itself is not touched.")
              .arg(title)) != QMessageBox::Yes)
    return;
  if (auto st = lib_->remove(id); !st.ok()) {
    show_banner(tr("<b>Not removed:</b> %1").arg(q(st.error().message).toHtmlEscaped()), false);
    return;
  }
  QMetaObject::invokeMethod(
      worker_, [w = worker_, id] { w->forget(id); }, Qt::QueuedConnection);
  load_library_cost();  // the document's runs went with it
  if (current_doc_ == id) {
    current_doc_ = 0;
    reader_->clear();
    history_->clear();
    records_.clear();
    answer_->clear();
    sources_->clear();
  }
  refresh_library();
}

void MainWindow::run_search(const QString& text) {
  if (!lib_) return;
  if (text.trimmed().isEmpty()) {
    hits_->hide();
    refresh_library();
    return;
  }
  // Words as a prefix query, so that typing narrows as it goes; quotes keep FTS syntax out.
  QString fts;
  for (const QString& w : text.split(QRegularExpression(QStringLiteral("\\s+")), Qt::SkipEmptyParts))
    fts += QStringLiteral("\"%1\"* ").arg(QString(w).remove(QLatin1Char('"')));
  auto hits = lib_->search(fts.trimmed().toStdString(), 50);
  auto docs = lib_->list();
  hits_->clear();
  QSet<qint64> ids;
  if (hits.ok()) {
    for (const auto& h : *hits) {
      ids.insert(h.doc_id);
      auto* it = new QListWidgetItem(
          QStringLiteral("%1 — %2\n%3")
              .arg(q(h.title.empty() ? h.path : h.title), q(app::provenance(h.chunk)), q(h.snippet).simplified()));
      it->setData(Qt::UserRole, static_cast<qlonglong>(h.doc_id));
      it->setData(Qt::UserRole + 1, h.chunk.page_first);
      hits_->addItem(it);
    }
  }
  if (docs.ok()) model_table_->set_documents(*docs, ids, true);
  hits_->setVisible(true);
  statusBar()->showMessage(
      hits.ok() ? tr("%n passage(s) match", nullptr, static_cast<int>(hits->size())) : q(hits.error().message), 5000);
}

// ---- documents, questions, answers ------------------------------------------------------------

qint64 MainWindow::document_id_for_path(const QString& path) const {
  if (!lib_) return 0;
  auto d = lib_->find(clean_path(path).toStdString());
  return d.ok() ? d->id : 0;
}

bool MainWindow::select_document(qint64 id) {
  if (!lib_) return false;
  auto row = lib_->find(std::to_string(id));
  if (!row.ok()) return false;
  auto segs = lib_->segments(id);
  if (!segs.ok()) return false;
  current_doc_ = id;
  const int r = model_table_->row_of_doc(id);
  if (r >= 0 && table_->currentIndex().row() != r) {
    const QSignalBlocker b(table_->selectionModel());
    table_->selectRow(r);
  }
  if (id != reader_->document_id()) part_->clear();
  // Scanned pages: the words OCR read there, for the marks, loaded a page at a time by the
  // reader's render thread on a connection of its own (opened on first use).
  Reader::OcrWordsLoader ocr_words;
  if (row->ocr_pages > 0)
    ocr_words = [db = settings_.library_path().toStdString(), id,
                 conn = std::make_shared<std::unique_ptr<storage::Library>>()](int page) {
      if (!*conn)
        if (auto lib = app::open_library_at(db); lib.ok()) *conn = std::move(*lib);
      if (!*conn) return std::vector<storage::OcrWordRow>{};
      auto w = (*conn)->ocr_words(id, page);
      return w.ok() ? std::move(*w) : std::vector<storage::OcrWordRow>{};
    };
  reader_->show_document(*row, std::move(*segs), passwords_.value(q(row->path)), std::move(ocr_words));
  answer_->clear();
  sources_->clear();
  last_answer_.reset();
  records_.clear();
  history_->clear();
  update_costs(nullptr);
  refresh_history([this](bool current) {
    if (current && !records_.empty()) history_->setCurrentRow(static_cast<int>(records_.size()) - 1);
  });
  update_actions();
  return true;
}

namespace {

struct HistoryLoad {
  qint64 doc_id = 0;
  std::vector<AnswerView> records;
  QStringList items;  // the history list's lines, one per record
};

// A document's stored answers, then its summary by `model` (if any), off the UI thread: the
// attention maps and cost reports are parsed here too.
HistoryLoad load_history(const std::shared_ptr<HistoryDb>& db, const std::string& path, qint64 doc_id, const std::string& model) {
  HistoryLoad out;
  out.doc_id = doc_id;
  if (!db->lib || db->path != path) {
    db->lib.reset();
    auto lib = app::open_library_at(path);
    if (!lib.ok()) return out;
    db->lib = std::move(*lib);
    db->path = path;
  }
  auto row = db->lib->find(std::to_string(doc_id));
  if (!row.ok()) return out;
  auto h = db->lib->history(doc_id);
  // The count comes from the library file: a negative one must not become a huge size.
  const size_t n_segs = static_cast<size_t>(std::max<int64_t>(row->n_segments, 0));
  const auto record = [&](const QString& question, const std::string& text, const std::string& sources, const std::string& cost,
                          const std::string& attention_map, const std::string& attention, bool summary, const std::string& when) {
    AnswerView v;
    v.doc_id = doc_id;
    v.summary = summary;
    v.question = question;
    v.text = q(text);
    v.attention = q(attention);
    auto src = nlohmann::json::parse(sources, nullptr, false);
    v.sources = src.is_array() ? src : nlohmann::json::array();
    v.heat = app::heat_from_json(attention_map, n_segs);
    v.cost = app::cost_from_json(nlohmann::json::parse(cost, nullptr, false));  // malformed: an empty report
    v.saved = true;
    out.items << QStringLiteral("%1  ·  %2\n%3")
                     .arg(q(when.substr(0, 16)).replace(QLatin1Char('T'), QLatin1Char(' ')), question,
                          v.text.left(160).simplified());
    out.records.push_back(std::move(v));
  };
  if (h.ok())
    for (const auto& a : *h)
      record(q(a.question), a.answer, a.sources, a.cost_report, a.attention_map, a.attention, false, a.asked_at);
  if (!model.empty()) {
    auto s = db->lib->find_summary(doc_id, row->content_hash, model);
    if (s.ok() && s->id > 0)
      record(QObject::tr("Summary"), s->text, s->sources, s->cost_report, s->attention_map, s->attention, true, s->created_at);
  }
  return out;
}
}  // namespace

void MainWindow::refresh_history(std::function<void(bool current)> then) {
  const quint64 gen = ++history_gen_;
  if (!lib_ || !current_doc_) {
    records_.clear();
    history_->clear();
    tabs_->setTabText(1, tr("History"));
    if (then) then(true);
    return;
  }
  when_done(QtConcurrent::run(&history_pool_, load_history, history_db_, settings_.library_path().toStdString(), current_doc_,
                              model_ ? app::model_name(*model_) : std::string()),
            this, [this, gen, then = std::move(then)](const HistoryLoad& h) {
              // The newest request wins: a document selected since, or a newer answer, supersedes this.
              const bool current = gen == history_gen_ && h.doc_id == current_doc_;
              if (current) {
                records_ = h.records;
                const QSignalBlocker b(history_);
                history_->clear();
                history_->addItems(h.items);
                tabs_->setTabText(1, tr("History (%1)").arg(records_.size()));
              }
              if (then) then(current);
            });
}

void MainWindow::show_sources(const nlohmann::json& sources) {
  sources_->clear();
  // Stored sources come back from the library file: fields of another type are left out
  // (json::value() would throw here, in a slot).
  for (const auto& s : sources) {
    if (!s.is_object()) continue;
    const QString text = q(app::json_string(s, "passage", app::json_string(s, "snippet")));
    sources_->addItem(QStringLiteral("%1%  %2 — “…%3…”")
                          .arg(100.0 * app::json_number(s, "weight"), 0, 'f', 0)
                          .arg(q(app::json_string(s, "label")), text));
  }
  if (sources.empty()) sources_->addItem(tr("(none: the answer attended only the question and the most recent text)"));
}

void MainWindow::show_record(const AnswerView& v) {
  last_answer_ = v;
  answer_->setPlainText(v.summary ? v.text : tr("Q: %1\n\n%2").arg(v.question, v.text));
  if (v.compared)
    answer_->append(
        tr("\n— Dense attention answered %1 —\n%2").arg(v.agree ? tr("the same") : tr("differently"), v.dense_answer));
  show_sources(v.sources);
  reader_->show_attention(v.heat, v.sources);
  cost_->set_cached(v.cached_tokens, v.cached_reading);
  update_costs(&v.cost);
}

void MainWindow::update_costs(const CostReport* answer) {
  std::optional<CostReport> doc;
  for (const auto& r : records_) accumulate(doc, r.cost);
  cost_->show_costs(answer, doc ? &*doc : nullptr, session_cost_ ? &*session_cost_ : nullptr,
                    library_cost_ ? &*library_cost_ : nullptr, answer ? static_cast<int>(answer->context_tokens) : 0);
}

void MainWindow::ask(const QString& question) {
  const QString qn = question.trimmed();
  if (qn.isEmpty()) {
    statusBar()->showMessage(tr("Type a question first."), 4000);
    return;
  }
  if (!current_doc_ || !model_ || busy_) return;
  last_error_.clear();
  last_stopped_ = false;
  answer_->setPlainText(tr("Q: %1\n\n").arg(qn));
  sources_->clear();
  tabs_->setCurrentIndex(0);
  set_busy(true);
  QMetaObject::invokeMethod(
      worker_,
      [w = worker_, id = current_doc_, qn, cmp = compare_->isChecked(), part = part_->text(), job = worker_->issue()] {
        w->ask(id, qn, cmp, part, job);
      },
      Qt::QueuedConnection);
}

void MainWindow::summarize() {
  if (!current_doc_ || !model_ || busy_) return;
  last_error_.clear();
  last_stopped_ = false;
  answer_->clear();
  sources_->clear();
  tabs_->setCurrentIndex(0);
  set_busy(true);
  QMetaObject::invokeMethod(
      worker_, [w = worker_, id = current_doc_, job = worker_->issue()] { w->summarize(id, job); }, Qt::QueuedConnection);
}

void MainWindow::stop() {
  worker_->cancel();
  statusBar()->showMessage(tr("Stopping…"), 3000);
}

void MainWindow::set_busy(bool on) {
  busy_ = on;
  work_bar_->setVisible(on);
  work_label_->setVisible(on);
  if (!on) work_label_->clear();
  update_actions();
}

void MainWindow::on_finished(const AnswerView& v) {
  if (!v.summary) refresh_instant();  // this document's reading is now stored
  accumulate(session_cost_, v.cost);
  if (v.saved) accumulate(library_cost_, v.cost);
  const bool here = v.doc_id == current_doc_;
  if (here) {
    show_record(v);
    if (v.stop_reason == QLatin1String("cancelled")) answer_->append(tr("\n(stopped — not saved)"));
  }
  statusBar()->showMessage(v.reused_tokens > 0 ? tr("Answered in %1 s; %2 document tokens reused from the cache (prefilled %3)")
                                                     .arg(v.prefill_seconds + v.decode_seconds, 0, 'f', 1)
                                                     .arg(v.reused_tokens)
                                                     .arg(v.prefilled_tokens)
                                               : tr("Answered in %1 s after reading %2 tokens")
                                                     .arg(v.prefill_seconds + v.decode_seconds, 0, 'f', 1)
                                                     .arg(v.prompt_tokens),
                           10000);
  if (!here) {
    emit answer_finished();
    return;
  }
  // answer_finished once the history lists the stored copy too.
  refresh_history([this, v](bool current) {
    // The stored copy is the newest record of its kind (answers come first, then the summary).
    int row = -1;
    for (int i = static_cast<int>(records_.size()) - 1; current && v.saved && i >= 0 && row < 0; --i)
      if (records_[static_cast<size_t>(i)].summary == v.summary) row = i;
    if (row >= 0) {
      // It lacks the comparison; the fresh answer is shown as it came.
      AnswerView& r = records_[static_cast<size_t>(row)];
      r.compared = v.compared, r.agree = v.agree, r.dense_answer = v.dense_answer;
      const QSignalBlocker b(history_);
      history_->setCurrentRow(row);
    }
    if (current && last_answer_ && last_answer_->doc_id == v.doc_id) update_costs(&last_answer_->cost);
    emit answer_finished();
  });
}

void MainWindow::on_failed(const QString& message, bool stopped) {
  last_error_ = message;
  last_stopped_ = stopped;
  answer_->append(QStringLiteral("\n") + message);
  statusBar()->showMessage(message, 10000);
  emit answer_finished();
}

void MainWindow::open_settings() {
  SettingsDialog d(settings_, this);
  if (d.exec() != QDialog::Accepted) return;
  GuiSettings s = d.settings();
  s.save();
  apply_settings(s);
}

// ---- window ------------------------------------------------------------------------------

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
  QStringList paths;
  for (const QUrl& u : e->mimeData()->urls())
    if (u.isLocalFile()) paths << u.toLocalFile();
  if (!paths.isEmpty()) add_paths(paths);
  e->acceptProposedAction();
}

void MainWindow::closeEvent(QCloseEvent* e) {
  // Cancel running work and wait for it: finished answers and documents are already
  // committed; the one in progress is dropped whole (each store is one transaction).
  closing_ = true;
  QSettings st;
  st.setValue(QStringLiteral("window/geometry"), saveGeometry());
  if (auto* split = findChild<QSplitter*>(QStringLiteral("main_splitter")))
    st.setValue(QStringLiteral("window/splitter"), split->saveState());
  ingest_queue_.clear();
  if (busy_ || ingest_.isRunning()) statusBar()->showMessage(tr("Stopping…"));
  worker_->shutdown();
  ingest_.cancel();
  ingest_.waitForFinished();
  e->accept();
}

}  // namespace docdsa::gui
