// The window end to end with the real model and real files, under the offscreen platform:
// add files (one broken, one password-protected) → ask → streamed answer → sources, heat strip
// and passage highlights → cost panel → history in SQLite → a follow-up that reuses the
// caches; Stop (also while the work is still queued); search; summarize; the PDF reader;
// French, Russian, Chinese and emoji documents; a locked library; cancelling or closing during
// a long PDF; closing mid-answer. Everything waits for events, never for a time.
// With --perf it runs the timing checks instead (label perf: UI stalls, how long closing takes).
// Exit status 77 (skipped) when DOCDSA_TEST_MODEL names no model.
#include <sqlite3.h>

#include <cstdio>
#include <cstring>

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QElapsedTimer>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QScopeGuard>
#include <QSemaphore>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTableView>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QTextBrowser>
#include <QTimer>

#include "cost_panel.h"
#include "docdsa/storage/library.h"
#include "engine_worker.h"
#include "gui_test_env.h"
#include "heat_strip.h"
#include "library_model.h"
#include "main_window.h"
#include "reader.h"

using namespace docdsa;
using namespace docdsa::gui;

namespace {
const QString kCorpus = QStringLiteral(DOCDSA_CORPUS);
const QString kSource = QStringLiteral(DOCDSA_SOURCE_DIR);
const QString kTranscript = kSource + QStringLiteral("/resources/demo/bostock-v-clayton-county-opening.srt");
constexpr int kLong = 240000;  // ms: generous for a 2-core CI machine

// Records the longest gap between 20 ms timer ticks on the UI thread while alive.
class UiLatency {
 public:
  UiLatency() {
    timer_.setInterval(20);
    QObject::connect(&timer_, &QTimer::timeout, [this] {
      if (last_.isValid())
        worst_ = std::max(worst_, last_.restart());
      else
        last_.start();
    });
    timer_.start();
  }
  qint64 worst_ms() const { return worst_; }

 private:
  QTimer timer_;
  QElapsedTimer last_;
  qint64 worst_ = 0;
};
}  // namespace

// One window with the test model and a private library; the helpers both suites use.
class WindowFixture : public QObject {
 protected:
  QTemporaryDir dir_;
  std::unique_ptr<MainWindow> w_;
  GuiSettings settings_;

  void open_window() {
    settings_.model = QString::fromUtf8(qgetenv("DOCDSA_TEST_MODEL"));  // main() checked it
    settings_.library = dir_.filePath(QStringLiteral("library.sqlite"));
    settings_.max_answer = 24;
    settings_.threads = 0;
    // Stored readings would outlive this run in the shared test cache and answer later runs'
    // first questions without reading: these tests watch the reading, so none are kept.
    settings_.cache_budget_gb = 0;
    w_ = std::make_unique<MainWindow>();
    w_->apply_settings(settings_);
    w_->show();
    QTRY_VERIFY_WITH_TIMEOUT(w_->model_loaded(), 30000);
    // A model without an indexer is calibrated once on load, with Ask disabled until it is done.
    QTRY_VERIFY_WITH_TIMEOUT(!w_->busy(), kLong);
  }
  int row_of(const QString& path) {
    return w_->library_model()->row_of_path(QDir::cleanPath(QFileInfo(path).absoluteFilePath()));
  }
  QString status_of(const QString& path) {
    const int r = row_of(path);
    return r < 0 ? QString()
                 : w_->library_model()->data(w_->library_model()->index(r, LibraryModel::kStatus), Qt::DisplayRole).toString();
  }
  void wait_ingest(const QStringList& paths) {
    QSignalSpy done(w_.get(), &MainWindow::ingest_finished);
    w_->add_paths(paths);
    QVERIFY(done.wait(kLong));
  }
  void ask_and_wait(const QString& q) {
    QSignalSpy done(w_.get(), &MainWindow::answer_finished);
    w_->question_edit()->setText(q);
    QTest::mouseClick(w_->ask_button(), Qt::LeftButton);
    QVERIFY(done.wait(kLong));
    QVERIFY2(w_->last_error().isEmpty(), qPrintable(w_->last_error()));
  }
  // Asks about `path` in a fresh dense session (the settings change reopens it) and returns
  // once the engine reports that it is reading, so that what follows lands mid-read. Callers
  // check QTest::currentTestFailed() after it.
  void start_dense_read(const QString& path) {
    QVERIFY(w_->select_document(w_->document_id_for_path(path)));
    GuiSettings s = settings_;
    s.attention = QStringLiteral("dense");
    s.max_answer = 200;
    w_->apply_settings(s);
    QTRY_VERIFY(w_->model_loaded());
    bool reading = false;
    const auto c = connect(w_->worker(), &EngineWorker::progress, this, [&](const QString&, qint64 done, qint64 total) {
      reading |= total > 0 && done < total;
    });
    const auto unhook = qScopeGuard([c] { QObject::disconnect(c); });  // `reading` dies with this call
    w_->ask(QStringLiteral("What happened in this argument?"));
    QTRY_VERIFY_WITH_TIMEOUT(reading, kLong);
  }
};

class GuiModelTest : public WindowFixture {
  Q_OBJECT
 private slots:
  void initTestCase() { open_window(); }

  void addFilesBadOnesStayInTheirRows() {
    bool asked = false;
    w_->set_password_provider([&](const QString&) {
      asked = true;
      return std::optional<QString>();  // the person cancels
    });
    const QString bad = kCorpus + QStringLiteral("/pdf/malformed/ocrmypdf__invalid.pdf");
    const QString locked = kCorpus + QStringLiteral("/pdf/encrypted/pypdf__r2-user-password.pdf");
    wait_ingest({kTranscript, bad, locked});
    QVERIFY(status_of(kTranscript).startsWith(QStringLiteral("ready")));
    QVERIFY2(status_of(bad).startsWith(QStringLiteral("failed")), qPrintable(status_of(bad)));
    const int r = row_of(bad);
    QVERIFY(w_->library_model()
                ->data(w_->library_model()->index(r, 0), Qt::ToolTipRole)
                .toString()
                .contains(QStringLiteral("ocrmypdf__invalid.pdf")));
    QVERIFY(status_of(locked).contains(QStringLiteral("password")));
    QTRY_VERIFY(asked);  // asked once, after the batch, not as a storm
    QVERIFY(QApplication::activeModalWidget() == nullptr);
  }

  void cancellingAnIngestKeepsWhatWasAdded() {
    // A batch of files; cancel as soon as the first is stored.
    QStringList files;
    for (const char* f : {"R-intro.pdf", "bashref.pdf", "debian-faq.en.pdf", "gnu-coding-standards.pdf", "maint-guide.en.pdf"})
      files << kCorpus + QStringLiteral("/pdf/text/") + QString::fromLatin1(f);
    QSignalSpy done(w_.get(), &MainWindow::ingest_finished);
    const int before = static_cast<int>(storage::Library::open(settings_.library.toStdString()).value()->list()->size());
    auto c = connect(w_->library_model(), &QAbstractItemModel::modelReset, w_.get(), [this] {
      if (w_->ingesting()) w_->cancel_ingest();
    });
    w_->add_paths(files);
    QVERIFY(done.wait(kLong));
    disconnect(c);
    auto lib = storage::Library::open(settings_.library.toStdString());
    const int added = static_cast<int>((*lib)->list()->size()) - before;
    QVERIFY2(added >= 1 && added < files.size(), qPrintable(QString::number(added)));
    QVERIFY((*lib)->integrity_check().ok());
    for (const QString& f : files) {  // every file is either stored or gone from the table
      const QString st = status_of(f);
      QVERIFY2(st.isEmpty() || st.startsWith(QStringLiteral("ready")), qPrintable(f + QStringLiteral(": ") + st));
    }
  }

  void cancellingALongPdfStopsWithinAPage() {
    // A 193-page PDF: cancel as soon as its first page has been read. The task ends cancelled
    // while that file is still being read (not after all its pages), and it is not stored.
    const QString big = kCorpus + QStringLiteral("/pdf/text/debian-policy.pdf");
    QVERIFY(w_->document_id_for_path(big) == 0);
    QSignalSpy done(w_.get(), &MainWindow::ingest_finished);
    int last_page = 0;
    auto c = connect(w_->library_model(), &QAbstractItemModel::dataChanged, w_.get(), [&] {
      const QString st = status_of(big);
      if (!st.contains(QStringLiteral("page"))) return;
      last_page = st.section(QLatin1Char(' '), 2, 2).toInt();  // "reading… page N of M"
      if (w_->ingesting() && !w_->ingest_cancelled()) w_->cancel_ingest();
    });
    w_->add_paths({big});
    QVERIFY(done.wait(kLong));
    disconnect(c);
    QVERIFY(w_->ingest_cancelled());
    QVERIFY2(last_page >= 1 && last_page < 193, qPrintable(QString::number(last_page)));
    QCOMPARE(w_->document_id_for_path(big), 0);
    QCOMPARE(row_of(big), -1);  // the unfinished file left the table
    auto lib = storage::Library::open(settings_.library.toStdString());
    QVERIFY((*lib)->integrity_check().ok());
    auto docs = (*lib)->list();
    QVERIFY(docs.ok());
    for (const auto& d : *docs) QVERIFY(d.n_tokens > 0);  // only whole documents
  }

  void closingDuringALongPdfDoesNotWaitForIt() {
    // Closing the window while a long PDF is read: close() returns (the read stops within a
    // page), nothing half-read is stored, and the library is sound.
    GuiSettings s = settings_;
    s.library = dir_.filePath(QStringLiteral("close-during-ingest.sqlite"));
    auto w = std::make_unique<MainWindow>();
    QSignalSpy ready(w.get(), &MainWindow::model_ready);
    w->apply_settings(s);
    w->show();
    QTRY_VERIFY_WITH_TIMEOUT(w->model_loaded(), 30000);
    const QString big = kCorpus + QStringLiteral("/pdf/text/debian-policy.pdf");
    bool reading = false;
    auto* m = w->library_model();
    connect(m, &QAbstractItemModel::dataChanged, w.get(), [&] {
      const int r = m->row_of_path(QDir::cleanPath(big));
      reading |= r >= 0 && m->data(m->index(r, LibraryModel::kStatus), Qt::DisplayRole).toString().contains(QStringLiteral("page"));
    });
    w->add_paths({big});
    QTRY_VERIFY_WITH_TIMEOUT(reading, kLong);
    QVERIFY(w->ingesting());
    QVERIFY(w->close());  // waits for the ingest task
    QVERIFY(!w->ingesting());
    QVERIFY(w->ingest_cancelled());
    w.reset();
    auto lib = storage::Library::open(s.library.toStdString());
    QVERIFY(lib.ok());
    QVERIFY((*lib)->integrity_check().ok());
    QCOMPARE((*lib)->list()->size(), size_t{0});
  }

  void passwordProtectedPdfOpensWithItsPassword() {
    const QString locked = kCorpus + QStringLiteral("/pdf/encrypted/pypdf__r2-user-password.pdf");
    QStringList asked;
    w_->set_password_provider([&](const QString& p) {
      asked << p;
      return std::optional<QString>(QStringLiteral("asdfzxcv"));
    });
    // Double-clicking the row asks again.
    QSignalSpy done(w_.get(), &MainWindow::ingest_finished);
    const QModelIndex idx = w_->library_model()->index(row_of(locked), 0);
    emit w_->library_view()->doubleClicked(idx);
    QVERIFY(done.wait(kLong));
    QCOMPARE(asked.size(), 1);
    QVERIFY2(status_of(locked).startsWith(QStringLiteral("ready")), qPrintable(status_of(locked)));
    const qint64 id = w_->document_id_for_path(locked);
    QVERIFY(id > 0);
    QVERIFY(w_->select_document(id));
    // Opened off the UI thread, with the password: pages, not the stored text.
    QTRY_VERIFY_WITH_TIMEOUT(w_->reader()->page_count() >= 1 && w_->reader()->shown_page() == 1, kLong);
  }

  void askStreamsAnswerSourcesCostAndHistory() {
    const qint64 id = w_->document_id_for_path(kTranscript);
    QVERIFY(id > 0);
    QVERIFY(w_->select_document(id));
    int streamed = 0;
    auto c = connect(w_->answer_view(), &QTextBrowser::textChanged, [&] { ++streamed; });
    // An event posted when the first part of the document has been read runs while the engine
    // is still at work: the engine does not hold the UI thread (were it on it, this would run
    // after the answer).
    bool posted = false, turned_while_busy = false;
    auto p = connect(w_->worker(), &EngineWorker::progress, this, [&](const QString&, qint64 done, qint64 total) {
      if (posted || total <= 0 || done >= total) return;
      posted = true;
      QTimer::singleShot(0, w_.get(), [&] { turned_while_busy = w_->busy(); });
    });
    ask_and_wait(QStringLiteral("What does Ms. Karlan argue?"));
    disconnect(c), disconnect(p);
    QVERIFY(posted && turned_while_busy);
    QVERIFY(streamed > 3);  // the answer arrived piece by piece
    const auto& a = *w_->last_answer();
    QVERIFY(!a.text.trimmed().isEmpty());
    QVERIFY(w_->answer_view()->toPlainText().contains(a.text.trimmed().left(20)));
    QVERIFY(a.sources.size() >= 1);
    QVERIFY(w_->sources_list()->count() >= 1);
    float heat = 0;
    for (float h : w_->reader()->heat_strip()->heat()) heat += h;
    QVERIFY(heat > 0.99f && heat < 1.01f);
    QVERIFY(w_->reader()->highlight_count() >= 1);  // attended passages marked in the transcript
    QVERIFY(w_->reader()->transcript_view()->toHtml().contains(QStringLiteral("#ffb347")));
    // Cost panel: counted FLOPs with a saving column, times labelled.
    auto* table = w_->cost_panel()->table();
    QVERIFY(table->rowCount() >= 6);
    bool flops = false, labelled = false;
    for (int r = 0; r < table->rowCount(); ++r) {
      flops |= table->item(r, 1)->text().contains(QStringLiteral("FLOP"));
      labelled |= table->item(r, 0)->text().contains(QStringLiteral("dense est."));
    }
    QVERIFY(flops && labelled);
    // The library-wide scope sums every stored run.
    auto* scope = w_->cost_panel()->findChild<QComboBox*>();
    QVERIFY(scope && scope->count() == 4);
    scope->setCurrentIndex(3);
    QVERIFY(table->rowCount() >= 6);
    scope->setCurrentIndex(0);
    // Persisted: the answer with its sources and attention map.
    auto lib = storage::Library::open(settings_.library.toStdString());
    QVERIFY(lib.ok());
    auto h = (*lib)->history(id);
    QVERIFY(h.ok());
    QCOMPARE(h->size(), size_t{1});
    QCOMPARE(QString::fromStdString(h->front().answer), a.text);
    QVERIFY(h->front().attention_map.size() > 10);
    QCOMPARE(w_->history_list()->count(), 1);
  }

  void followUpReusesTheDocumentCaches() {
    ask_and_wait(QStringLiteral("Who is the Chief Justice?"));
    const auto& a = *w_->last_answer();
    QVERIFY(a.reused_tokens > 2000);
    QVERIFY(a.prefilled_tokens < 100);
    QCOMPARE(w_->history_list()->count(), 2);
  }

  void historySelectionRestoresAnAnswer() {
    w_->history_list()->setCurrentRow(0);
    QVERIFY(w_->answer_view()->toPlainText().contains(QStringLiteral("Karlan")));
    QVERIFY(w_->sources_list()->count() >= 1);
    float heat = 0;
    for (float h : w_->reader()->heat_strip()->heat()) heat += h;
    QVERIFY(heat > 0.99f);  // the stored attention map, back on the strip
  }

  void compareWithDenseMeasuresBoth() {
    auto* compare = w_->findChild<QCheckBox*>(QStringLiteral("compare"));
    QVERIFY(compare);
    compare->setChecked(true);
    ask_and_wait(QStringLiteral("Which case is argued?"));
    compare->setChecked(false);
    const auto& a = *w_->last_answer();
    qInfo("compare with dense (one run): prefill DSA %.2f s vs dense %.2f s, decode DSA %.2f s vs dense %.2f s; answers %s",
          a.cost.prefill_seconds, a.cost.dense_prefill_seconds, a.cost.decode_seconds, a.cost.dense_decode_seconds,
          a.agree ? "agree" : "differ");
    QVERIFY(a.compared);
    QVERIFY(a.cost.dense_measured);
    QVERIFY(a.cost.dense_prefill_seconds > 0);
    QVERIFY(w_->answer_view()->toPlainText().contains(QStringLiteral("Dense attention answered")));
    bool measured = false;
    for (int r = 0; r < w_->cost_panel()->table()->rowCount(); ++r)
      measured |= w_->cost_panel()->table()->item(r, 0)->text().contains(QStringLiteral("measured, both"));
    QVERIFY(measured);
    QCOMPARE(w_->history_list()->count(), 3);
  }

  void stopEndsAnAnswerWithoutSavingIt() {
    QSignalSpy done(w_.get(), &MainWindow::answer_finished);
    bool stopped = false;
    // Stop as soon as the first piece of the answer has arrived.
    auto c = connect(w_->answer_view(), &QTextBrowser::textChanged, w_.get(), [&] {
      if (!stopped && w_->busy() && w_->answer_view()->toPlainText().size() > 50) w_->stop(), stopped = true;
    });
    w_->ask(QStringLiteral("Summarise the argument in detail."));
    QVERIFY(done.wait(kLong));
    disconnect(c);
    QVERIFY(stopped);
    QVERIFY(w_->last_answer());
    QCOMPARE(w_->last_answer()->stop_reason, QStringLiteral("cancelled"));
    QCOMPARE(w_->history_list()->count(), 3);
    QVERIFY(w_->ask_button()->isEnabled());
  }

  void stopWhileQueuedCancelsTheQueuedJobs() {
    // Two jobs wait in the engine's queue (its thread is held) when Stop is pressed: both end
    // as stopped, without running, and nothing is stored.
    const qint64 id = w_->document_id_for_path(kTranscript);
    QVERIFY(id > 0 && w_->select_document(id));
    QTRY_VERIFY(!w_->busy());
    auto lib = storage::Library::open(settings_.library.toStdString());
    QVERIFY(lib.ok());
    const size_t answers = (*lib)->history(id)->size();
    QSemaphore gate;
    QMetaObject::invokeMethod(w_->worker(), [&gate] { gate.acquire(); }, Qt::QueuedConnection);
    int stopped = 0, ran = 0;
    auto c1 = connect(w_->worker(), &EngineWorker::failed, this, [&](const QString&, bool s) { s ? ++stopped : ++ran; });
    auto c2 = connect(w_->worker(), &EngineWorker::finished, this, [&](const AnswerView&) { ++ran; });
    w_->ask(QStringLiteral("What does Ms. Karlan argue?"));  // job 1, as the Ask button queues it
    QVERIFY(w_->busy());
    EngineWorker* worker = w_->worker();
    QMetaObject::invokeMethod(
        worker, [worker, id, job = worker->issue()] { worker->summarize(id, job); }, Qt::QueuedConnection);  // job 2
    w_->stop();
    gate.release();
    QTRY_VERIFY_WITH_TIMEOUT(stopped + ran == 2, kLong);
    disconnect(c1), disconnect(c2);
    QCOMPARE(ran, 0);
    QCOMPARE(stopped, 2);
    QVERIFY(w_->last_stopped());
    QTRY_VERIFY(!w_->busy() && w_->ask_button()->isEnabled());
    QCOMPARE((*lib)->history(id)->size(), answers);
    auto row = (*lib)->find(std::to_string(id));
    QVERIFY(row.ok());
    auto sum = (*lib)->find_summary(id, row->content_hash, "");
    QVERIFY(!sum.ok() || sum->id == 0);
    // A Stop covers only work issued before it: the next question runs.
    ask_and_wait(QStringLiteral("Who is the Chief Justice?"));
    QVERIFY(!w_->last_stopped());
    QCOMPARE((*lib)->history(id)->size(), answers + 1);
  }

  void searchFindsPassages() {
    QTest::keyClicks(w_->search_edit(), QStringLiteral("Karlan"));
    QTRY_VERIFY(w_->search_hits()->count() > 0);
    QVERIFY(w_->search_hits()->item(0)->text().contains(QStringLiteral("bostock")));
    w_->search_edit()->clear();
    QTRY_VERIFY(w_->search_hits()->isHidden());
  }

  void pdfReaderRendersSelectsAndZooms() {
    const QString pdf = kSource + QStringLiteral("/resources/demo/siege-of-vicksburg.pdf");
    wait_ingest({pdf});
    const qint64 id = w_->document_id_for_path(pdf);
    QVERIFY(id > 0 && w_->select_document(id));
    Reader* r = w_->reader();
    auto lib = storage::Library::open(settings_.library.toStdString());
    QVERIFY(lib.ok());
    auto row = (*lib)->find(std::to_string(id));
    QVERIFY(row.ok());
    // Pages are opened and rendered off the UI thread; the newest request is what shows.
    const auto settled = [r] { return !r->rendering() && r->shown_page() == r->current_page(); };
    QTRY_VERIFY_WITH_TIMEOUT(r->page_count() > 0 && settled(), kLong);
    QCOMPARE(r->page_count(), static_cast<int>(row->n_pages));
    PdfPageView* v = r->page_view();
    QVERIFY(v->width() > 100 && v->height() > 100);
    w_->activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(w_.get()));
    QTRY_VERIFY(settled());  // a fit-width page follows the final layout
    const int fit_width = v->width();
    QTest::keyClick(r, Qt::Key_Plus, Qt::ControlModifier);  // zoom in from "fit width" steps to 50%: smaller
    QTRY_VERIFY(settled() && v->width() < fit_width);
    const int half = v->width();
    QTest::keyClick(r, Qt::Key_0, Qt::ControlModifier);  // back to fit width
    QTRY_VERIFY(settled() && v->width() > half);
    // Page requests faster than rendering: the last one wins.
    QTest::keyClick(r, Qt::Key_PageDown);
    r->go_to_segment(static_cast<int>(r->heat_strip()->heat().size()) - 1);
    auto segs = (*lib)->segments(id);
    QVERIFY(segs.ok() && !segs->empty());
    QCOMPARE(r->current_page(), segs->back().page);  // the strip's last band is the last page with text
    QTRY_VERIFY(settled());
    QCOMPARE(r->shown_page(), segs->back().page);
    // Drag over the upper half of the page: its text is selected.
    QTest::mousePress(v, Qt::LeftButton, {}, QPoint(5, 5));
    QTest::mouseMove(v, QPoint(v->width() - 5, v->height() / 2));
    QTest::mouseRelease(v, Qt::LeftButton, {}, QPoint(v->width() - 5, v->height() / 2));
    QVERIFY2(v->selected_text().size() > 40, qPrintable(v->selected_text()));
    QCOMPARE(r->copy_selection(), v->selected_text());
  }

  void pdfAnswerHighlightsPassagesOnThePage() {
    ask_and_wait(QStringLiteral("Who commanded the Union army?"));
    const auto& a = *w_->last_answer();
    QVERIFY(!a.sources.empty());
    // Clicking the top source shows its page with the attended words marked.
    w_->sources_list()->setCurrentRow(0);
    Reader* r = w_->reader();
    QCOMPARE(r->current_page(), a.sources[0]["page"].get<int>());
    QTRY_VERIFY(!r->rendering() && r->shown_page() == r->current_page());
    QVERIFY(r->highlight_count() >= 1);
  }

  // An ingest reads scanned pages as the window's applied settings say, not as the stored ones
  // (QSettings, here the defaults: OCR on). Applied without OCR, a scan is refused as before.
  void ingestTakesTheSettingsTheWindowApplied() {
    QVERIFY(GuiSettings::load().ocr);
    GuiSettings s = settings_;
    s.ocr = false;
    w_->apply_settings(s);
    QTRY_VERIFY_WITH_TIMEOUT(w_->model_loaded() && !w_->busy(), kLong);
    const QString scan = kCorpus + QStringLiteral("/pdf/scanned/ocrmypdf__skew.pdf");
    wait_ingest({scan});
    const QString status = status_of(scan);
    w_->apply_settings(settings_);
    QTRY_VERIFY_WITH_TIMEOUT(w_->model_loaded() && !w_->busy(), kLong);
    QVERIFY2(status.startsWith(QStringLiteral("failed")) && status.contains(QStringLiteral("no text layer")),
             qPrintable(status));
  }

  // A scanned PDF (no text layer) is read by OCR off the UI thread, its row says so, and an
  // answer's attended words are marked on the page image from the stored OCR word boxes.
  void scannedPdfAnswerMarksWordsOnThePageImage() {
    const QString scan = kCorpus + QStringLiteral("/pdf/scanned/ocrmypdf__linn.pdf");
    wait_ingest({scan});
    const qint64 id = w_->document_id_for_path(scan);
    QVERIFY2(id > 0, qPrintable(status_of(scan)));
    QVERIFY2(status_of(scan).contains(QStringLiteral("OCR")), qPrintable(status_of(scan)));
    QVERIFY(w_->select_document(id));
    Reader* r = w_->reader();
    QTRY_VERIFY_WITH_TIMEOUT(r->page_count() == 1 && !r->rendering() && r->shown_page() == 1, kLong);
    ask_and_wait(QStringLiteral("How many tracks does the LinnSequencer record?"));
    const auto& a = *w_->last_answer();
    QVERIFY(!a.sources.empty());
    w_->sources_list()->setCurrentRow(0);
    QCOMPARE(r->current_page(), 1);
    QTRY_VERIFY(!r->rendering() && r->shown_page() == r->current_page());
    QVERIFY(r->highlight_count() >= 1);  // the passage found among the OCR words, its words marked
    PdfPageView* v = r->page_view();
    QVERIFY(v->mark_count() >= 3);
    // The words are OCR boxes on the page image: dragging over the whole page selects them.
    QTest::mousePress(v, Qt::LeftButton, {}, QPoint(2, 2));
    QTest::mouseMove(v, QPoint(v->width() - 2, v->height() - 2));
    QTest::mouseRelease(v, Qt::LeftButton, {}, QPoint(v->width() - 2, v->height() - 2));
    QVERIFY2(v->selected_text().contains(QStringLiteral("Sequence")), qPrintable(v->selected_text().left(200)));
  }

  void summarizeStoresASummary() {
    const QString txt = kSource + QStringLiteral("/resources/demo/lighthouse.txt");
    wait_ingest({txt});
    const qint64 id = w_->document_id_for_path(txt);
    QVERIFY(id > 0 && w_->select_document(id));
    QSignalSpy done(w_.get(), &MainWindow::answer_finished);
    w_->summarize();
    QVERIFY(done.wait(kLong));
    QVERIFY(w_->last_answer() && w_->last_answer()->summary);
    QVERIFY(!w_->last_answer()->text.trimmed().isEmpty());
    QCOMPARE(w_->history_list()->count(), 1);
    QVERIFY(w_->history_list()->item(0)->text().contains(QStringLiteral("Summary")));
    // An answer after the summary is listed before it, and is the one selected.
    ask_and_wait(QStringLiteral("Who keeps the lighthouse?"));
    QCOMPARE(w_->history_list()->count(), 2);
    QCOMPARE(w_->history_list()->currentRow(), 0);
    QVERIFY(w_->history_list()->item(1)->text().contains(QStringLiteral("Summary")));
  }

  void nonAsciiDocumentsRoundTrip() {
    // French, Russian, Chinese and emoji text, in file names too: stored, listed, shown in the
    // reader, found by search and asked about with the real model, with every string the window
    // shows decoding to the same UTF-8 text it was made from (no U+FFFD, no mojibake).
    const auto write = [&](const QString& name, const QString& text) {
      const QString path = dir_.filePath(name);
      QFile f(path);
      if (!f.open(QIODevice::WriteOnly)) return QString();
      f.write(text.toUtf8());
      return path;
    };
    const QString fr_line = QStringLiteral("Le château de Versailles, l’œuvre d’André Le Nôtre");  // < 80 bytes: whole
    const QString fr = write(QStringLiteral("château.txt"),
                             fr_line + QStringLiteral("\n\nLouis XIV installe la cour à Versailles en 1682. Les jardins "
                                                      "s’étendent sur des kilomètres ; c’est l’œuvre d’une vie, écrit un "
                                                      "courtisan ému.\n\nÀ l’été, les fêtes durent jusqu’à l’aube."));
    const QString ru_cue = QStringLiteral("Река Москва течёт через весь город, а Кремль стоит на её высоком берегу уже "
                                          "много веков; здесь жили цари, а теперь работает президент России.");
    const QString ru = write(QStringLiteral("москва.srt"), QStringLiteral("1\n00:00:01,000 --> 00:00:04,000\nМосква — столица "
                                                                            "России.\n\n2\n00:00:04,500 --> 00:00:12,000\n") +
                                                                ru_cue + QStringLiteral("\n"));
    const QString zh_cue = QStringLiteral("长城是中国古代的军事防御工程。");
    const QString zh = write(QStringLiteral("长城.vtt"), QStringLiteral("WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n") + zh_cue +
                                                           QStringLiteral("\n\n00:00:04.500 --> 00:00:09.000\n它东起山海关，西至嘉峪"
                                                                          "关，全长两万多公里，是世界上最长的建筑。\n"));
    // Its first line (the title) is longer than a title is cut to; the paragraph after it is
    // 1 + 4n bytes of emoji, so that a cut by bytes falls inside a character.
    QString emoji_line = QStringLiteral("🎉🚀🌍 Праздник на орбите 长城 и Москва — ");  // 75 bytes, then 4-byte balloons
    for (int i = 0; i < 12; ++i) emoji_line += QStringLiteral("🎈");
    QString emoji_para = QStringLiteral("a");
    for (int i = 0; i < 60; ++i) emoji_para += QStringLiteral("🚀");
    const QString emoji = write(QStringLiteral("🎉 party.txt"),
                                emoji_line + QStringLiteral("\n\n") + emoji_para +
                                    QStringLiteral("\n\nThe rocket 🚀 launches at dawn; the party 🎉 starts at noon."));
    const QString fr_srt = kCorpus + QStringLiteral("/transcripts/subtitles-long/pysrt__utf-8.srt");
    const QStringList files = {fr, ru, zh, emoji, fr_srt};
    for (const QString& f : files) QVERIFY2(!f.isEmpty() && QFileInfo::exists(f), qPrintable(f));
    wait_ingest(files);
    const auto valid = [](const QString& t) { return !t.contains(QChar::ReplacementCharacter) && QString::fromUtf8(t.toUtf8()) == t; };
    const auto title_of = [&](const QString& f) {
      const int r = row_of(f);
      return r < 0 ? QString() : w_->library_model()->data(w_->library_model()->index(r, LibraryModel::kTitle), Qt::DisplayRole).toString();
    };
    for (const QString& f : files) {
      QVERIFY2(status_of(f).startsWith(QStringLiteral("ready")), qPrintable(f + QStringLiteral(": ") + status_of(f)));
      QVERIFY2(valid(title_of(f)), qPrintable(title_of(f)));
    }
    QCOMPARE(title_of(fr), fr_line);
    QCOMPARE(title_of(ru), QStringLiteral("москва.srt"));
    QCOMPARE(title_of(zh), QStringLiteral("长城.vtt"));
    QVERIFY2(title_of(emoji).size() >= 10 && emoji_line.startsWith(title_of(emoji)), qPrintable(title_of(emoji)));
    // The reader shows the stored text as it was written.
    const qint64 zh_id = w_->document_id_for_path(zh), ru_id = w_->document_id_for_path(ru);
    QVERIFY(zh_id > 0 && ru_id > 0);
    QVERIFY(w_->select_document(w_->document_id_for_path(fr_srt)));
    QVERIFY(w_->reader()->transcript_view()->toPlainText().contains(QStringLiteral("où le présentateur local")));
    QVERIFY(w_->select_document(w_->document_id_for_path(emoji)));
    QVERIFY(w_->reader()->transcript_view()->toPlainText().contains(emoji_para));
    // Search by a Cyrillic word: the hit's snippet is the stored text.
    w_->search_edit()->setText(QStringLiteral("Кремль"));  // as typed (QTest types ASCII only)
    QTRY_VERIFY(w_->search_hits()->count() > 0);
    const QString hit = w_->search_hits()->item(0)->text();
    QVERIFY2(hit.contains(QStringLiteral("москва.srt")) && hit.contains(QStringLiteral("Кремль")) && valid(hit), qPrintable(hit));
    w_->search_edit()->clear();
    QTRY_VERIFY(w_->search_hits()->isHidden());
    // Ask with the real model: what streamed is what is shown and stored; sources are valid text.
    for (const auto& [id, question] : {std::pair{zh_id, QStringLiteral("长城有多长？")},
                                       std::pair{w_->document_id_for_path(emoji), QStringLiteral("Когда стартует ракета 🚀?")},
                                       std::pair{ru_id, QStringLiteral("Где стоит Кремль?")}}) {
      QVERIFY(w_->select_document(id));
      QString streamed;
      auto c = connect(w_->worker(), &EngineWorker::text, this, [&](const QString& piece) { streamed += piece; });
      ask_and_wait(question);
      disconnect(c);
      const AnswerView& a = *w_->last_answer();
      QCOMPARE(streamed, a.text);
      QVERIFY(w_->answer_view()->toPlainText().contains(question));
      QVERIFY(w_->answer_view()->toPlainText().contains(a.text.trimmed()));
      QVERIFY(w_->sources_list()->count() >= 1);
      for (int i = 0; i < w_->sources_list()->count(); ++i)
        QVERIFY2(valid(w_->sources_list()->item(i)->text()), qPrintable(w_->sources_list()->item(i)->text()));
      for (const auto& src : a.sources)
        for (const char* key : {"snippet", "passage", "label"})
          if (src.contains(key)) QVERIFY2(valid(QString::fromStdString(src[key].get<std::string>())), key);
      QVERIFY(w_->history_list()->count() >= 1);
      QVERIFY(w_->history_list()->item(w_->history_list()->count() - 1)->text().contains(question));
      auto lib = storage::Library::open(settings_.library.toStdString());
      auto h = (*lib)->history(id);
      QVERIFY(h.ok() && !h->empty());
      QCOMPARE(QString::fromStdString(h->back().question), question);
      QCOMPARE(QString::fromStdString(h->back().answer), a.text);
    }
    QVERIFY(w_->reader()->transcript_view()->toPlainText().contains(ru_cue));
    QVERIFY(w_->select_document(zh_id));
    QVERIFY(w_->reader()->transcript_view()->toPlainText().contains(zh_cue));
  }

  void lockedLibraryIsReportedInTheRow() {
    // Another program holds the library with an exclusive lock: the add fails after the busy
    // timeout with a message in the file's row, and nothing crashes.
    sqlite3* other = nullptr;
    QCOMPARE(sqlite3_open(settings_.library.toUtf8().constData(), &other), SQLITE_OK);
    QCOMPARE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
    const QString f = kCorpus + QStringLiteral("/transcripts/edge-cases/srt/go-astisub__example-in-styled.srt");
    wait_ingest({f});
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    QVERIFY2(status_of(f).contains(QStringLiteral("locked")), qPrintable(status_of(f)));
    wait_ingest({f});  // and once released, it goes in
    QVERIFY2(status_of(f).startsWith(QStringLiteral("ready")), qPrintable(status_of(f)));
  }

  void closingMidAnswerCancelsAndLosesNothing() {
    const qint64 id = w_->document_id_for_path(kTranscript);
    // A dense read of the whole transcript; close once the engine reports that it is reading.
    start_dense_read(kTranscript);
    if (QTest::currentTestFailed()) return;
    QVERIFY(w_->busy());
    w_->close();
    w_.reset();  // joins the engine thread
    auto lib = storage::Library::open(settings_.library.toStdString());
    QVERIFY(lib.ok());
    QVERIFY((*lib)->integrity_check().ok());
    auto h = (*lib)->history(id);
    QVERIFY(h.ok());
    QCOMPARE(h->size(), size_t{4});  // the four finished answers, nothing partial
  }
};

// Timing checks (ctest label perf, not run by scripts/test.sh): how long the UI thread stalls
// while the engine works, and how long closing takes mid-read.
class GuiPerfTest : public WindowFixture {
  Q_OBJECT
 private slots:
  void initTestCase() {
    open_window();
    wait_ingest({kTranscript});
    const qint64 id = w_->document_id_for_path(kTranscript);
    QVERIFY(id > 0 && w_->select_document(id));
  }

  void uiThreadKeepsTurningWhileAnswering() {
    UiLatency ui;
    QElapsedTimer t;
    t.start();
    ask_and_wait(QStringLiteral("What does Ms. Karlan argue?"));
    qInfo("first answer: %lld ms; worst UI-thread stall while reading and answering: %lld ms", t.elapsed(), ui.worst_ms());
    // The UI thread kept turning while ~2,600 tokens were read (many seconds of work).
    QVERIFY2(ui.worst_ms() < 1500, qPrintable(QStringLiteral("UI stalled %1 ms").arg(ui.worst_ms())));
  }

  // Opt-in (minutes): DOCDSA_GUI_LONG_DOC names a document of ~128K tokens. The window must
  // keep turning and keep reporting progress while it is read, and Stop must end the read.
  void longDocumentStaysResponsive() {
    const QString doc = QString::fromUtf8(qgetenv("DOCDSA_GUI_LONG_DOC"));
    if (doc.isEmpty()) QSKIP("set DOCDSA_GUI_LONG_DOC to a ~128K-token document to run this");
    const int seconds = qEnvironmentVariableIntValue("DOCDSA_GUI_LONG_SECONDS") > 0
                            ? qEnvironmentVariableIntValue("DOCDSA_GUI_LONG_SECONDS")
                            : 120;
    GuiSettings s = settings_;
    s.attention = QStringLiteral("dsa");
    w_->apply_settings(s);
    QTRY_VERIFY(w_->model_loaded());
    wait_ingest({doc});
    const qint64 id = w_->document_id_for_path(doc);
    QVERIFY(id > 0 && w_->select_document(id));
    auto lib = storage::Library::open(settings_.library.toStdString());
    const int64_t tokens = (*lib)->find(std::to_string(id))->n_tokens;
    UiLatency ui;
    w_->ask(QStringLiteral("What is this collection of essays about?"));
    QTRY_VERIFY_WITH_TIMEOUT(w_->busy(), 10000);
    QElapsedTimer t;
    t.start();
    int clicks = 0;
    while (t.elapsed() < seconds * 1000) {
      QTest::qWait(500);
      // The window answers input while the engine works.
      QTest::keyClicks(w_->search_edit(), QStringLiteral("x"));
      QTest::keyClick(w_->search_edit(), Qt::Key_Backspace);
      ++clicks;
    }
    QVERIFY(w_->busy());
    QElapsedTimer stop;
    stop.start();
    QSignalSpy done(w_.get(), &MainWindow::answer_finished);
    w_->stop();
    QVERIFY(done.wait(120000));
    qInfo("long document: %lld tokens; worst UI-thread stall over %d s of reading: %lld ms; %d search edits; Stop took %lld ms",
          static_cast<long long>(tokens), seconds, ui.worst_ms(), clicks, stop.elapsed());
    QVERIFY2(ui.worst_ms() < 1500, qPrintable(QStringLiteral("UI stalled %1 ms").arg(ui.worst_ms())));
    QVERIFY(w_->last_error().contains(QStringLiteral("Stopped")));
  }

  void closingMidReadIsQuick() {
    start_dense_read(kTranscript);  // a fresh session: closing lands in the read
    if (QTest::currentTestFailed()) return;
    QElapsedTimer t;
    t.start();
    w_->close();
    w_.reset();  // joins the engine thread
    qInfo("closed mid-read in %lld ms", t.elapsed());
    QVERIFY(t.elapsed() < 20000);
  }
};

int main(int argc, char** argv) {
  // A whole-suite skip is exit status 77 (SKIP_RETURN_CODE), so that ctest reports it.
  const QByteArray model = qgetenv("DOCDSA_TEST_MODEL");
  if (model.isEmpty() || !QFileInfo::exists(QString::fromUtf8(model))) {
    std::printf("SKIP: DOCDSA_TEST_MODEL not set or missing (label: model)\n");
    return 77;
  }
  // --perf: the timing suite instead of the functional one.
  std::vector<char*> args(argv, argv + argc);
  const bool perf = std::erase_if(args, [](const char* a) { return std::strcmp(a, "--perf") == 0; }) > 0;
  docdsa::gui::test::isolate_environment();
  int n = static_cast<int>(args.size());
  QApplication app(n, args.data());
  QApplication::setOrganizationName(QStringLiteral("DocDSA"));
  QApplication::setApplicationName(QStringLiteral("docdsa-test"));
  if (perf) {
    GuiPerfTest t;
    return QTest::qExec(&t, n, args.data());
  }
  GuiModelTest t;
  return QTest::qExec(&t, n, args.data());
}

#include "gui_model_test.moc"
