// Widget pieces that need no model: the heat strip, the attention-intensity scale, the
// library table's in-place errors, UTF-8 streaming, settings validation, the stored forms of
// heat maps and cost reports, the window's message when the model is missing, a Stop that
// reaches work still queued, and PDF pages and history read off the UI thread.
#include <sqlite3.h>

#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QDropEvent>
#include <QLabel>
#include <QMimeData>
#include <QMutex>
#include <QPushButton>
#include <QListWidget>
#include <QSemaphore>
#include <QSignalSpy>
#include <QSpinBox>
#include <QThread>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QTextBrowser>

#include "cost_panel.h"
#include "docdsa/app/attention_options.h"
#include "docdsa/app/doc_prompt.h"
#include "docdsa/app/doc_session.h"
#include "engine_worker.h"
#include "gui_test_env.h"
#include "heat_strip.h"
#include "library_model.h"
#include "main_window.h"
#include "reader.h"
#include "settings.h"
#include "settings_dialog.h"
#include "scratch_dir.h"

using namespace docdsa;
using namespace docdsa::gui;

namespace {
// Settings naming a model that does not exist, with a private library file.
GuiSettings without_model(const QString& name) {
  GuiSettings s;
  s.model = QStringLiteral("/nonexistent/model.gguf");
  s.library = QString::fromStdString((docdsa::test::scratch_dir() / ("docdsa-gui-" + name.toStdString() + ".sqlite")).string());
  return s;
}

struct StoredAnswer {
  const char *question, *answer, *sources, *cost_report;
};
// A fresh library at s.library holding one text document (`text` as its one segment and
// chunk) and these answers to it, stored without a model. The document's id; 0 on failure.
qint64 store_answered_document(const GuiSettings& s, const std::string& path, const std::string& text,
                               const std::vector<StoredAnswer>& answers) {
  QFile::remove(s.library);
  auto lib = storage::Library::open(s.library.toStdString());
  if (!lib.ok()) return 0;
  storage::DocumentRow d;
  d.path = path, d.kind = "txt", d.title = "Document", d.content_hash = "abc123", d.n_tokens = 3;
  const auto n = static_cast<int64_t>(text.size());
  auto st = (*lib)->store(d, {{0, -1, -1, "", text}}, {{0, 3, 0, 0, -1, -1, 0, n, "", text}});
  if (!st.ok()) return 0;
  for (const auto& a : answers)
    if (!(*lib)->save_answer(st->first, a.question, a.answer, a.sources, {"ask", "dsa", "m.gguf", a.cost_report, "[]"}).ok())
      return 0;
  return st->first;
}

// Applies `s` to `w`, waits until it has answered about the (missing) model, and selects
// document `id`. Callers check QTest::currentTestFailed() after it.
void select_stored(MainWindow& w, const GuiSettings& s, qint64 id) {
  QSignalSpy ready(&w, &MainWindow::model_ready);
  w.apply_settings(s);
  QTRY_VERIFY_WITH_TIMEOUT(!ready.isEmpty(), 10000);
  QVERIFY(w.select_document(id));
}
}  // namespace

class GuiUnitTest : public QObject {
  Q_OBJECT
 private slots:
  void heatStripMapsClicksToSegments() {
    HeatStrip strip;
    strip.resize(20, 400);
    strip.set_data({100, 100, 200}, {0.1f, 0.0f, 0.9f});  // segment 2 is half the strip
    QCOMPARE(strip.segment_at(10), 0);
    QCOMPARE(strip.segment_at(150), 1);
    QCOMPARE(strip.segment_at(399), 2);
    QSignalSpy spy(&strip, &HeatStrip::segment_clicked);
    QTest::mouseClick(&strip, Qt::LeftButton, {}, QPoint(10, 300));
    QCOMPARE(spy.count(), 1);
    QCOMPARE(spy.at(0).at(0).toInt(), 2);
  }

  void intensityIsPerCharacterAboveAverage() {
    // Same share of selections, but segment 1 is ten times shorter: it is the hot one.
    const auto t = attention_intensity({0.5f, 0.5f}, {1000.0f, 100.0f});
    QCOMPARE(t[1], 1.0f);
    QCOMPARE(t[0], 0.0f);
    const auto flat = attention_intensity({0.25f, 0.75f}, {100.0f, 300.0f});
    QVERIFY(flat[0] > 0 && flat[0] == flat[1]);
    const auto none = attention_intensity({0.0f, 0.0f}, {10.0f, 10.0f});
    QCOMPARE(none[0], 0.0f);
  }

  void libraryRowsKeepErrorsInPlace() {
    LibraryModel m;
    storage::DocumentRow d;
    d.id = 7, d.path = "/docs/a.pdf", d.kind = "pdf", d.n_pages = 3, d.n_tokens = 1234;
    m.set_state(QStringLiteral("/docs/bad.pdf"), LibraryModel::State::kFailed, QStringLiteral("/docs/bad.pdf: damaged"));
    m.set_documents({d});
    QCOMPARE(m.rowCount(), 2);
    const int bad = m.row_of_path(QStringLiteral("/docs/bad.pdf"));
    QVERIFY(bad >= 0);
    QVERIFY(m.data(m.index(bad, LibraryModel::kStatus), Qt::DisplayRole).toString().contains(QStringLiteral("damaged")));
    QCOMPARE(m.data(m.index(m.row_of_doc(7), LibraryModel::kLength), Qt::DisplayRole).toString(), QStringLiteral("3 page(s)"));
    m.clear_failed();
    QCOMPARE(m.rowCount(), 1);
  }

  void utf8StreamNeverSplitsACharacter() {
    Utf8Stream s;
    const std::string text = "caf\xC3\xA9 \xE2\x82\xAC";  // "café €"
    QString out;
    for (char c : text) out += s.push(std::string_view(&c, 1));
    QCOMPARE(out, QString::fromUtf8(text.c_str()));
  }

  void settingsValidateDsaParameters() {
    GuiSettings s;
    QVERIFY(s.validate().isEmpty());
    s.top_k = 100, s.sinks = 64, s.window = 512;
    QVERIFY(!s.validate().isEmpty());
    s = GuiSettings();
    s.ctx = 100;
    QVERIFY(!s.validate().isEmpty());
  }

  void heatAndCostSurviveStorage() {
    const std::vector<float> heat = {0.0f, 0.25f, 0.0f, 0.75f};
    QCOMPARE(app::heat_from_json(app::heat_to_json(heat), 4), heat);
    QCOMPARE(app::heat_from_json("not json", 2), std::vector<float>(2, 0.0f));
    QCOMPARE(app::heat_from_json("[[9, 1.0], [1, 0.5]]", 2), (std::vector<float>{0.0f, 0.5f}));
    CostReport c;
    c.mode = AttentionMode::kDsa, c.top_k = 2048, c.prompt_tokens = 3000, c.decoded_tokens = 40, c.context_tokens = 3040;
    c.attn_flops_dense = 4e11, c.attn_flops_dsa = 3e11, c.linear_flops = 9e11, c.weight_bytes_per_token = 8e7;
    c.decode_bytes_dense = 40 * 9e7, c.decode_bytes_dsa = 40 * 6e7, c.prefill_seconds = 20, c.decode_seconds = 3;
    const CostReport r = app::cost_from_json(app::cost_json(c));
    QCOMPARE(r.prompt_tokens, c.prompt_tokens);
    QCOMPARE(r.attn_flops_dsa, c.attn_flops_dsa);
    QVERIFY(std::abs(r.bytes_per_decoded_token_dsa() - c.bytes_per_decoded_token_dsa()) < 1.0);
    QCOMPARE(r.dense_measured, false);
  }

  void denseComparisonIsLikeForLike() {
    // A follow-up (the document already read) against a dense twin that had to read it first:
    // the dense reading is left out of the measured dense time.
    app::Answer a, dense;
    a.text = dense.text = "same";
    a.cost.prefill_seconds = 0.2;
    dense.cost.prefill_seconds = 9.0, dense.reading_seconds = 8.5, dense.cost.decode_seconds = 3.0;
    app::compare_with_dense(a, dense);
    QVERIFY(a.compared && a.agrees && a.cost.dense_measured);
    QCOMPARE(a.cost.dense_prefill_seconds, 0.5);
    QCOMPARE(a.cost.dense_decode_seconds, 3.0);
    // Both read the document in this answer: the whole dense time counts.
    app::Answer b;
    b.reading_seconds = 7.0;
    app::compare_with_dense(b, dense);
    QCOMPARE(b.cost.dense_prefill_seconds, 9.0);
    QVERIFY(!b.agrees);
  }

  void costPanelLabelsEstimates() {
    CostPanel p;
    CostReport c;
    c.mode = AttentionMode::kDsa, c.top_k = 2048, c.prompt_tokens = 9000, c.decoded_tokens = 10, c.context_tokens = 9010;
    c.attn_flops_dense = 4e11, c.attn_flops_dsa = 1e11, c.prefill_seconds = 10, c.decode_seconds = 1;
    p.show_costs(&c, &c, &c, &c, 9010);
    bool estimated = false, ratio = false;
    for (int r = 0; r < p.table()->rowCount(); ++r) {
      estimated |= p.table()->item(r, 0)->text().contains(QStringLiteral("dense est."));
      ratio |= p.table()->item(r, 3) && p.table()->item(r, 3)->text() == QStringLiteral("4.00×");
    }
    QVERIFY(estimated);
    QVERIFY(ratio);
  }

  void settingsDialogRoundTripsAndRefusesBadValues() {
    GuiSettings s;
    s.model = QStringLiteral("/models/other.gguf");
    s.threads = 3, s.attention = QStringLiteral("dense"), s.top_k = 4096, s.sinks = 32, s.window = 256, s.ctx = 65536;
    s.max_answer = 99, s.prices = QStringLiteral("/p.json"), s.library = QStringLiteral("/l.sqlite");
    s.device = QStringLiteral("cuda");
    SettingsDialog d(s);
    const GuiSettings back = d.settings();
    QCOMPARE(back.model, s.model);
    QCOMPARE(back.device, s.device);
    QCOMPARE(back.attention_options().device, std::string("cuda"));  // what the engine worker's sessions get
    QCOMPARE(back.attention, s.attention);
    QCOMPARE(back.top_k, s.top_k);
    QCOMPARE(back.window, s.window);
    QCOMPARE(back.ctx, s.ctx);
    QCOMPARE(back.library, s.library);
    // sinks + window >= top-k is refused with a message; the dialog stays open.
    auto* topk = d.findChild<QSpinBox*>(QStringLiteral("top_k"));
    QVERIFY(topk);
    topk->setValue(200);
    d.show();
    d.accept();
    QVERIFY(d.isVisible());
    QVERIFY(d.result() != QDialog::Accepted);
    // Settings persist through QSettings.
    s.save();
    QCOMPARE(GuiSettings::load().top_k, 4096);
    QCOMPARE(GuiSettings::load().device, QStringLiteral("cuda"));
    GuiSettings().save();
  }

  void settingsOfferInstalledModelsWithPlainHints() {
    // A model folder of the test's own: placeholder files under the known names are installed models.
    QTemporaryDir dir;
    for (const char* f : {"SmolLM2-135M-Instruct.Q4_1.gguf", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"}) {
      QFile file(dir.path() + QLatin1Char('/') + QLatin1String(f));
      QVERIFY(file.open(QIODevice::WriteOnly));
    }
    const QByteArray old = qgetenv("DOCDSA_MODEL_DIR");
    qputenv("DOCDSA_MODEL_DIR", dir.path().toUtf8());
    GuiSettings s;
    SettingsDialog d(s);
    auto* choice = d.findChild<QComboBox*>(QStringLiteral("model_choice"));
    QVERIFY(choice);
    QCOMPARE(choice->count(), 4);  // best installed (default), the two models, another file
    QCOMPARE(choice->currentIndex(), 0);
    QVERIFY(choice->itemText(1).contains(QStringLiteral("Qwen2.5")) && choice->itemText(1).contains(QStringLiteral("better answers")));
    QVERIFY(choice->itemText(2).contains(QStringLiteral("SmolLM2")) && choice->itemText(2).endsWith(QStringLiteral("fast")));
    choice->setCurrentIndex(2);
    emit choice->activated(2);
    QCOMPARE(d.settings().model, QStringLiteral("smollm2-135m"));
    choice->setCurrentIndex(0);
    emit choice->activated(0);
    QCOMPARE(d.settings().model, QString());
    s.model = QStringLiteral("better");  // a saved name selects its entry; a path selects "another file"
    SettingsDialog named(s);
    QCOMPARE(named.findChild<QComboBox*>(QStringLiteral("model_choice"))->currentIndex(), 1);
    s.model = QStringLiteral("/models/other.gguf");
    SettingsDialog other(s);
    QCOMPARE(other.findChild<QComboBox*>(QStringLiteral("model_choice"))->currentIndex(), 3);
    QCOMPARE(other.settings().model, s.model);
    if (old.isEmpty()) qunsetenv("DOCDSA_MODEL_DIR");
    else qputenv("DOCDSA_MODEL_DIR", old);
  }

  void droppedFilesWithoutAModelFailInTheirRows() {
    MainWindow w;
    QSignalSpy ready(&w, &MainWindow::model_ready);
    const GuiSettings s = without_model(QStringLiteral("drop"));
    w.apply_settings(s);
    // The window first configures its saved settings (which may find a model): wait for ours.
    QTRY_VERIFY_WITH_TIMEOUT(!ready.isEmpty() && !ready.last().at(0).toBool() && !w.model_loaded(), 10000);
    QSignalSpy done(&w, &MainWindow::ingest_finished);
    auto* mime = new QMimeData();
    mime->setUrls({QUrl::fromLocalFile(QStringLiteral(DOCDSA_SOURCE_DIR "/resources/demo/lighthouse.txt"))});
    w.show();
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&w, &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&w, &drop);
    QVERIFY(drop.isAccepted());
    QVERIFY(!done.isEmpty() || done.wait(10000));
    const int r = w.library_model()->row_of_path(QStringLiteral(DOCDSA_SOURCE_DIR "/resources/demo/lighthouse.txt"));
    QVERIFY(r >= 0);
    const QString status =
        w.library_model()->data(w.library_model()->index(r, LibraryModel::kStatus), Qt::DisplayRole).toString();
    QVERIFY2(status.contains(QStringLiteral("no model")), qPrintable(status));
    QVERIFY(QApplication::activeModalWidget() == nullptr);
    delete mime;
    QFile::remove(s.library);
  }

  void stopReachesWorkStillQueued() {
    // The engine thread is busy (held) while two jobs wait behind it; Stop: both end as
    // stopped without running. A job issued after the Stop runs (here: fails for the model).
    EngineWorker w;
    QThread t;
    w.moveToThread(&t);
    t.start();
    QSemaphore gate;
    QMetaObject::invokeMethod(&w, [&gate] { gate.acquire(); }, Qt::QueuedConnection);
    QList<bool> stopped;
    connect(&w, &EngineWorker::failed, this, [&](const QString&, bool s) { stopped << s; });
    QMetaObject::invokeMethod(&w, [&w, job = w.issue()] { w.ask(1, QStringLiteral("q"), false, {}, job); }, Qt::QueuedConnection);
    QMetaObject::invokeMethod(&w, [&w, job = w.issue()] { w.summarize(1, job); }, Qt::QueuedConnection);
    w.cancel();
    gate.release();
    QTRY_COMPARE(stopped.size(), 2);
    QCOMPARE(stopped, (QList<bool>{true, true}));
    QMetaObject::invokeMethod(&w, [&w, job = w.issue()] { w.ask(1, QStringLiteral("q"), false, {}, job); }, Qt::QueuedConnection);
    QTRY_COMPARE(stopped.size(), 3);
    QVERIFY(!stopped[2]);
    t.quit();
    t.wait();
  }

  void readerOpensAndRendersOffTheUiThread() {
    Reader r;
    r.resize(600, 800);
    r.show();
    storage::DocumentRow d;
    d.id = 1, d.kind = "pdf", d.path = DOCDSA_SOURCE_DIR "/resources/demo/siege-of-vicksburg.pdf";
    std::vector<storage::SegmentRow> segs(3);
    for (int i = 0; i < 3; ++i) segs[static_cast<size_t>(i)].page = i + 1, segs[static_cast<size_t>(i)].text = "text";
    QSignalSpy opened(&r, &Reader::document_opened);
    r.show_document(d, segs);
    // show_document returned before Poppler opened the file: the stored text shows meanwhile.
    QVERIFY(r.rendering());
    QCOMPARE(r.page_count(), 0);
    QVERIFY(opened.wait(30000));
    QVERIFY(opened.at(0).at(0).toBool());
    QVERIFY(r.page_count() >= 3);
    QTRY_VERIFY(!r.rendering() && r.shown_page() == 1);
    // Three page requests in a row: the last one is what shows.
    QSignalSpy shown(&r, &Reader::page_shown);
    r.go_to_segment(1);
    r.go_to_segment(2);
    r.go_to_segment(0);
    r.go_to_segment(2);
    QVERIFY(r.rendering());
    QTRY_VERIFY(!r.rendering());
    QCOMPARE(r.shown_page(), 3);
    QVERIFY(!shown.isEmpty());
    QCOMPARE(shown.last().at(0).toInt(), 3);
    QVERIFY(r.page_view()->width() > 100);
    // A file that is gone: its stored text, and the reader says so.
    d.path = "/nonexistent/gone.pdf";
    QSignalSpy gone(&r, &Reader::document_opened);
    r.show_document(d, segs);
    QVERIFY(gone.wait(30000));
    QVERIFY(!gone.at(0).at(0).toBool());
    QCOMPARE(r.page_count(), 0);
    QVERIFY(r.transcript_view()->isVisible());
  }

  void readerLoadsOcrWordsPerPageOffTheUiThread() {
    // A scanned PDF of four pages: the reader asks for a page's OCR words when it first renders
    // that page, on its render thread, and keeps them for later renders (zoom, coming back).
    Reader r;
    r.resize(600, 800);
    r.show();
    storage::DocumentRow d;
    d.id = 1, d.kind = "pdf", d.path = DOCDSA_CORPUS "/pdf/scanned/ocrmypdf__cardinal.pdf";
    std::vector<storage::SegmentRow> segs(4);
    for (int i = 0; i < 4; ++i) segs[static_cast<size_t>(i)].page = i + 1, segs[static_cast<size_t>(i)].text = "text";
    struct Calls {
      QMutex m;
      std::vector<int> pages;
      bool on_ui_thread = false;
    };
    auto calls = std::make_shared<Calls>();
    QThread* ui = QThread::currentThread();
    r.show_document(d, segs, {}, [calls, ui](int page) {
      const QMutexLocker lock(&calls->m);
      calls->pages.push_back(page);
      calls->on_ui_thread |= QThread::currentThread() == ui;
      storage::OcrWordRow w;
      w.page = page, w.x0 = 72, w.y0 = 72, w.x1 = 500, w.y1 = 700, w.text = "page" + std::to_string(page);
      return std::vector<storage::OcrWordRow>{w};
    });
    QTRY_VERIFY_WITH_TIMEOUT(r.page_count() == 4 && !r.rendering() && r.shown_page() == 1, 30000);
    const auto select_all = [&r] {
      PdfPageView* v = r.page_view();
      QTest::mousePress(v, Qt::LeftButton, {}, QPoint(2, 2));
      QTest::mouseMove(v, QPoint(v->width() - 2, v->height() - 2));
      QTest::mouseRelease(v, Qt::LeftButton, {}, QPoint(v->width() - 2, v->height() - 2));
      return v->selected_text();
    };
    QCOMPARE(select_all(), QStringLiteral("page1"));  // the loaded words are the page's text
    r.go_to_segment(2);
    QTRY_VERIFY(!r.rendering() && r.shown_page() == 3);
    QCOMPARE(select_all(), QStringLiteral("page3"));
    r.go_to_segment(0);  // back to page 1, then a re-render at another width: loaded already
    QTRY_VERIFY(!r.rendering() && r.shown_page() == 1);
    r.resize(700, 800);
    QTest::qWait(100);
    QTRY_VERIFY(!r.rendering());
    QCOMPARE(select_all(), QStringLiteral("page1"));
    const QMutexLocker lock(&calls->m);
    QCOMPARE(calls->pages, (std::vector<int>{1, 3}));
    QVERIFY(!calls->on_ui_thread);
  }

  void historyIsReadOffTheUiThread() {
    // A stored document with two answers (no model needed to store them).
    const GuiSettings s = without_model(QStringLiteral("history"));
    const qint64 id = store_answered_document(s, "/docs/été.txt", "Un été à Paris.",
                                              {{"Où ?", "À Paris.", "[]", "{}"}, {"Quand ?", "À Paris.", "[]", "{}"}});
    QVERIFY(id > 0);
    MainWindow w;
    select_stored(w, s, id);
    if (QTest::currentTestFailed()) return;
    QCOMPARE(w.history_list()->count(), 0);  // not read yet: select_document did not wait for it
    QTRY_COMPARE(w.history_list()->count(), 2);
    QVERIFY(w.history_list()->item(1)->text().contains(QStringLiteral("Quand ?")));
    QCOMPARE(w.history_list()->currentRow(), 1);  // the newest, shown
    QVERIFY(w.answer_view()->toPlainText().contains(QStringLiteral("À Paris.")));
    QFile::remove(s.library);
  }

  void storedRecordsOfAnyShapeShowWithoutThrowing() {
    // A library file edited by hand or damaged: sources and cost reports whose fields have
    // other types. json::value() and get() threw on them: in the slot that lists sources, in
    // the reader, and while the library's costs were totalled (aborting the window); and a
    // negative segment count made the history task throw (std::length_error).
    const GuiSettings s = without_model(QStringLiteral("odd-json"));
    const char* sources = R"([42, "x", null,
        {"segment": "0", "passage": 7, "snippet": [], "weight": "heavy", "label": [1]},
        {"segment": 99999999999, "page": 1.5, "passage": "Some", "weight": 1e308, "label": "p. 9"},
        {"segment": 0, "passage": "Some text.", "weight": 0.5, "label": "p. 1"}])";
    const char* cost = R"({"attention": 5, "dense_seconds": {"measured": "yes"}, "seconds": [],
        "tokens": {"prompt": 1e300, "decoded": "x"}, "sparse_rows": 1e300, "mean_selected_keys": 1e300})";
    const qint64 id = store_answered_document(s, "/docs/odd.txt", "Some text.", {{"Odd?", "Yes.", sources, cost}});
    QVERIFY(id > 0);
    // A segment count below zero too: the history's attention map was sized by it.
    sqlite3* db = nullptr;
    QCOMPARE(sqlite3_open(s.library.toUtf8().constData(), &db), SQLITE_OK);
    QCOMPARE(sqlite3_exec(db, "UPDATE documents SET n_segments = -1", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    MainWindow w;
    select_stored(w, s, id);
    if (QTest::currentTestFailed()) return;
    QTRY_COMPARE(w.history_list()->count(), 1);
    QCOMPARE(w.history_list()->currentRow(), 0);
    QVERIFY(w.answer_view()->toPlainText().contains(QStringLiteral("Yes.")));
    // The three objects are listed (fields of another type left blank), the rest skipped.
    QCOMPARE(w.sources_list()->count(), 3);
    QVERIFY(w.sources_list()->item(2)->text().contains(QStringLiteral("p. 1")));
    QVERIFY(w.reader()->transcript_view()->toPlainText().contains(QStringLiteral("Some text.")));
    QFile::remove(s.library);
  }

  void missingModelPointsToSettings() {
    MainWindow w;
    QSignalSpy ready(&w, &MainWindow::model_ready);
    const GuiSettings s = without_model(QStringLiteral("unit"));
    w.apply_settings(s);
    w.show();
    // The window's first load (its default settings) may report before this one: wait for ours.
    QTRY_VERIFY_WITH_TIMEOUT(!ready.isEmpty() && !ready.last().at(0).toBool() &&
                                 w.banner_text().contains(QStringLiteral("/nonexistent/model.gguf")),
                             10000);
    QVERIFY(w.banner_text().contains(QStringLiteral("Settings")));
    QVERIFY(!w.ask_button()->isEnabled());
    QVERIFY(!w.model_loaded());
    QFile::remove(s.library);
  }
};

int main(int argc, char** argv) {
  docdsa::gui::test::isolate_environment();
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("DocDSA"));
  QApplication::setApplicationName(QStringLiteral("docdsa-test"));
  GuiUnitTest t;
  return QTest::qExec(&t, argc, argv);
}

#include "gui_unit_test.moc"
