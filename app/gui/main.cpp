// docdsa-gui: the desktop app. Options open documents and ask a question at start-up; with
// --screenshots DIR it saves pictures of the library, the answer and the cost panel and quits
// (scripts/screenshots.sh runs that under Xvfb for the README).
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QEventLoop>
#include <QIcon>
#include <QLineEdit>
#include <QListWidget>
#include <QTabWidget>
#include <QTimer>

#include "docdsa/engine/model_locator.h"
#include "main_window.h"
#include "reader.h"
#include "settings.h"

using docdsa::gui::MainWindow;

namespace {

QIcon app_icon() {
  auto icon = docdsa::locate_resource("icons/docdsa.png");
  return icon.ok() ? QIcon(QString::fromStdString(*icon)) : QIcon();
}

void snap(MainWindow& w, const QString& dir, const QString& name) {
  QDir().mkpath(dir);
  // The reader renders pages off the UI thread: wait for the page on screen (or 10 s).
  if (w.reader()->rendering()) {
    QEventLoop loop;
    QObject::connect(w.reader(), &docdsa::gui::Reader::page_shown, &loop, &QEventLoop::quit);
    QObject::connect(w.reader(), &docdsa::gui::Reader::document_opened, &loop, [&loop, &w] {
      if (!w.reader()->rendering()) loop.quit();
    });
    QTimer::singleShot(10000, &loop, &QEventLoop::quit);
    loop.exec();
  }
  QApplication::processEvents();
  w.grab().save(QDir(dir).filePath(name));
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName(QStringLiteral("docdsa"));
  QApplication::setOrganizationName(QStringLiteral("DocDSA"));
  QApplication::setApplicationDisplayName(QStringLiteral("DocDSA"));
  QApplication::setApplicationVersion(QStringLiteral("0.1.0"));
  QApplication::setDesktopFileName(QStringLiteral("docdsa"));
  QApplication::setWindowIcon(app_icon());

  QCommandLineParser p;
  p.setApplicationDescription(QStringLiteral("Read long documents with a local language model and sparse attention."));
  p.addHelpOption();
  p.addVersionOption();
  QCommandLineOption library({QStringLiteral("l"), QStringLiteral("library")}, QStringLiteral("Library file (this run only)."),
                             QStringLiteral("file"));
  QCommandLineOption model({QStringLiteral("m"), QStringLiteral("model")}, QStringLiteral("GGUF model file (this run only)."),
                           QStringLiteral("file"));
  QCommandLineOption ask({QStringLiteral("a"), QStringLiteral("ask")}, QStringLiteral("Ask this about the first document given."),
                         QStringLiteral("question"));
  QCommandLineOption part(QStringLiteral("part"),
                          QStringLiteral("With --ask: read only these pages (3-7) or this time range (00:10:00-00:20:00)."),
                          QStringLiteral("range"));
  QCommandLineOption prefix(QStringLiteral("shot-prefix"), QStringLiteral("Prefix for the screenshot file names."),
                            QStringLiteral("text"));
  QCommandLineOption shots(QStringLiteral("screenshots"),
                           QStringLiteral("Save library.png, answer.png and cost.png here, then quit."), QStringLiteral("dir"));
  QCommandLineOption quit_after_start(QStringLiteral("quit-after-start"),
                                      QStringLiteral("Quit once the window is shown and the model is loaded or reported "
                                                     "missing (a start-up check: exit status 0)."));
  p.addOptions({library, model, ask, part, prefix, shots, quit_after_start});
  p.addPositionalArgument(QStringLiteral("files"), QStringLiteral("PDFs, transcripts, text files or folders to add."),
                          QStringLiteral("[files...]"));
  p.process(app);

  docdsa::gui::GuiSettings s = docdsa::gui::GuiSettings::load();
  if (p.isSet(library)) s.library = p.value(library);
  if (p.isSet(model)) s.model = p.value(model);
  MainWindow w(s);
  // Unattended screenshots never stop for a password dialog.
  if (p.isSet(shots)) w.set_password_provider([](const QString&) { return std::optional<QString>(); });
  if (p.isSet(quit_after_start)) {
    // Exits 0 once the engine thread has answered (model_ready) while the window is shown.
    QObject::connect(
        &w, &MainWindow::model_ready, &app, [&w](bool) { QApplication::exit(w.isVisible() ? 0 : 1); },
        Qt::SingleShotConnection);
  }
  w.show();

  const QStringList files = p.positionalArguments();
  const QString question = p.value(ask), dir = p.value(shots), pre = p.value(prefix);
  const QString part_text = p.value(part);
  if (!dir.isEmpty()) w.resize(1600, 1000);
  if (!files.isEmpty()) {
    // After the model is ready: ingest needs its tokenizer.
    QObject::connect(
        &w, &MainWindow::model_ready, &w, [&w, files](bool) { w.add_paths(files); }, Qt::SingleShotConnection);
    QObject::connect(
        &w, &MainWindow::ingest_finished, &w,
        [&w, files, question, dir, pre, part_text] {
          const qint64 id = w.document_id_for_path(files.first());
          if (id) w.select_document(id);
          if (!dir.isEmpty()) snap(w, dir, pre + QStringLiteral("library.png"));
          if (id && !question.isEmpty()) {
            w.question_edit()->setText(question);
            w.part_edit()->setText(part_text);
            w.ask(question);
          } else if (!dir.isEmpty())
            QTimer::singleShot(0, &w, &QWidget::close);
        },
        Qt::SingleShotConnection);
  }
  if (!dir.isEmpty()) {
    QObject::connect(
        &w, &MainWindow::answer_finished, &w,
        [&w, dir, pre] {
          // The top source selected: the reader shows it with the attended passage marked.
          if (w.sources_list()->count() > 0) w.sources_list()->setCurrentRow(0);
          snap(w, dir, pre + QStringLiteral("answer.png"));
          w.tabs()->setCurrentIndex(2);
          snap(w, dir, pre + QStringLiteral("cost.png"));
          QTimer::singleShot(0, &w, &QWidget::close);
        },
        Qt::SingleShotConnection);
  }
  return QApplication::exec();
}
