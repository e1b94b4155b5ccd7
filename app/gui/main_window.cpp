#include "main_window.h"

#include <QApplication>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QStatusBar>
#include <QVBoxLayout>

#include "docdsa/engine/model_locator.h"
#include "docdsa/storage/library.h"

namespace docdsa::gui {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setWindowTitle(tr("DocDSA"));
  resize(900, 600);
  auto* central = new QWidget(this);
  auto* layout = new QVBoxLayout(central);
  auto* title = new QLabel(tr("<h2>DocDSA</h2><p>Read long documents with a local language model and sparse attention.</p>"), central);
  model_status_ = new QLabel(central);
  model_status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  model_status_->setWordWrap(true);
  auto* library = new QLabel(tr("Library: %1").arg(QString::fromStdString(storage::default_library_path())), central);
  library->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(title);
  layout->addWidget(model_status_);
  layout->addWidget(library);
  layout->addStretch();
  setCentralWidget(central);

  auto* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&Quit"), QKeySequence::Quit, qApp, &QApplication::quit);
  auto* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About DocDSA"), this, [this] {
    QMessageBox::about(this, tr("About DocDSA"), tr("DocDSA 0.1.0 — whole-document answers with DeepSeek-style sparse attention."));
  });
  check_model();
}

void MainWindow::check_model() {
  auto path = locate_model("");
  if (!path.ok()) {
    model_status_->setText(tr("<b>No model found.</b> Run <code>scripts/fetch_model.sh</code> (or <code>scripts/demo.sh</code>) "
                              "to download the default model, or set DOCDSA_MODEL to any llama-family GGUF."));
    statusBar()->showMessage(tr("No model"));
    return;
  }
  model_status_->setText(tr("Model: %1").arg(QString::fromStdString(*path)));
  statusBar()->showMessage(tr("Ready"));
}

}  // namespace docdsa::gui
