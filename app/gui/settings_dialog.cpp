#include "settings_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QThread>
#include <QVBoxLayout>

#include <algorithm>
#include <string_view>

#include "docdsa/engine/model_locator.h"
#include "docdsa/ingest/ocr.h"

namespace docdsa::gui {

namespace {
const QString kOtherFile = QStringLiteral("*file*");  // the model choice entry for a file named below

QWidget* with_browse(QLineEdit* edit, const QString& title, const QString& filter, bool save, QWidget* parent) {
  auto* w = new QWidget(parent);
  auto* h = new QHBoxLayout(w);
  h->setContentsMargins(0, 0, 0, 0);
  h->addWidget(edit, 1);
  auto* b = new QPushButton(QObject::tr("Browse…"), w);
  h->addWidget(b);
  QObject::connect(b, &QPushButton::clicked, w, [=] {
    const QString f =
        save ? QFileDialog::getSaveFileName(parent, title, edit->text(), filter, nullptr, QFileDialog::DontConfirmOverwrite)
             : QFileDialog::getOpenFileName(parent, title, edit->text(), filter);
    if (!f.isEmpty()) edit->setText(f);
  });
  return w;
}
QSpinBox* spin(int lo, int hi, int v, QWidget* parent) {
  auto* s = new QSpinBox(parent);
  s->setRange(lo, hi);
  s->setValue(v);
  return s;
}
}  // namespace

SettingsDialog::SettingsDialog(const GuiSettings& s, QWidget* parent) : QDialog(parent) {
  setWindowTitle(tr("DocDSA Settings"));
  auto* v = new QVBoxLayout(this);
  auto* f = new QFormLayout();
  // The installed models with a plain hint; the field below also takes any other GGUF file.
  model_choice_ = new QComboBox(this);
  model_choice_->setObjectName(QStringLiteral("model_choice"));
  model_choice_->addItem(tr("Best installed model (default)"), QString());
  for (const auto& m : installed_models(model_dirs())) {
    if (!m.known) continue;
    const QString hint = std::string_view(m.known->speed) == "fast" ? tr("fast") : tr("better answers, slower");
    model_choice_->addItem(QStringLiteral("%1 — %2").arg(QString::fromUtf8(m.known->title), hint), QString::fromUtf8(m.known->name));
  }
  model_choice_->addItem(tr("Another GGUF file (below)"), kOtherFile);
  f->addRow(tr("&Model"), model_choice_);
  model_ = new QLineEdit(s.model, this);
  model_->setPlaceholderText(tr("the model above, or a GGUF file"));
  f->addRow(tr("Model &file (GGUF)"),
            with_browse(model_, tr("Choose a GGUF model"), tr("GGUF models (*.gguf);;All files (*)"), false, this));
  const auto sync_choice = [this](const QString& text) {  // the entry naming the field's model
    const KnownModel* k = find_known_model(text.trimmed().toStdString());
    const int i = text.trimmed().isEmpty() ? 0 : model_choice_->findData(k ? QString::fromUtf8(k->name) : kOtherFile);
    model_choice_->setCurrentIndex(i >= 0 ? i : model_choice_->count() - 1);
  };
  sync_choice(s.model);
  connect(model_, &QLineEdit::textChanged, this, sync_choice);
  connect(model_choice_, &QComboBox::activated, this, [this](int i) {
    const QString name = model_choice_->itemData(i).toString();
    if (name == kOtherFile) model_->setFocus();
    else model_->setText(name);
  });
  threads_ = spin(0, 1024, s.threads, this);
  threads_->setSpecialValueText(tr("all cores (%1)").arg(QThread::idealThreadCount()));
  f->addRow(tr("&Threads"), threads_);
  attention_ = new QComboBox(this);
  attention_->addItem(tr("DSA — sparse (default)"), QStringLiteral("dsa"));
  attention_->addItem(tr("Dense"), QStringLiteral("dense"));
  attention_->setCurrentIndex(s.attention == QLatin1String("dense") ? 1 : 0);
  f->addRow(tr("&Attention"), attention_);
  device_ = new QComboBox(this);
  device_->addItem(tr("Automatic (GPU when available)"), QStringLiteral("auto"));
  device_->addItem(tr("CPU"), QStringLiteral("cpu"));
  device_->addItem(tr("GPU (CUDA)"), QStringLiteral("cuda"));
  device_->setCurrentIndex(std::max(0, device_->findData(s.device)));
  f->addRow(tr("&Device"), device_);
  top_k_ = spin(1, 1 << 20, s.top_k, this);
  top_k_->setObjectName(QStringLiteral("top_k"));
  f->addRow(tr("Top-&k (keys per token)"), top_k_);
  sinks_ = spin(0, 1 << 16, s.sinks, this);
  f->addRow(tr("Attention &sinks"), sinks_);
  window_ = spin(0, 1 << 20, s.window, this);
  f->addRow(tr("Local &window"), window_);
  ctx_ = spin(1024, 1 << 20, s.ctx, this);
  ctx_->setSingleStep(1024);
  f->addRow(tr("&Context length (tokens)"), ctx_);
  max_answer_ = spin(1, 8192, s.max_answer, this);
  f->addRow(tr("Longest &answer (tokens)"), max_answer_);
  cache_budget_ = spin(0, 100000, s.cache_budget_gb, this);
  cache_budget_->setSuffix(tr(" GB"));
  cache_budget_->setToolTip(tr("Disk space for documents kept read, so later questions about them answer at once "
                               "(least recently used removed first; 0: off)"));
  f->addRow(tr("Read documents &kept (disk)"), cache_budget_);
  prices_ = new QLineEdit(s.prices, this);
  prices_->setPlaceholderText(tr("default: $XDG_CONFIG_HOME/docdsa/prices.json, else the bundled DeepSeek list prices"));
  f->addRow(tr("&Price table (JSON)"), with_browse(prices_, tr("Choose a price table"), tr("JSON (*.json)"), false, this));
  library_ = new QLineEdit(s.library, this);
  library_->setPlaceholderText(s.library_path());
  f->addRow(tr("&Library file"),
            with_browse(library_, tr("Library location"), tr("SQLite (*.sqlite *.db);;All files (*)"), true, this));
  ocr_ = new QCheckBox(tr("Read scanned pages (pages without text) with OCR"), this);
  ocr_->setChecked(s.ocr);
  f->addRow(tr("Scanned PDFs"), ocr_);
  ocr_languages_ = new QLineEdit(s.ocr_languages, this);
  ocr_languages_->setPlaceholderText(tr("default: %1").arg(QString::fromStdString(ingest::default_ocr_languages())));
  ocr_languages_->setToolTip(tr("Tesseract language codes joined by '+', e.g. fra+eng (the first is the main language). "
                                "More languages: the tesseract-ocr-* packages."));
  f->addRow(tr("&OCR languages"), ocr_languages_);
  v->addLayout(f);
  error_ = new QLabel(this);
  error_->setStyleSheet(QStringLiteral("color:#b02020"));
  error_->setWordWrap(true);
  v->addWidget(error_);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel | QDialogButtonBox::RestoreDefaults, this);
  connect(buttons, &QDialogButtonBox::accepted, this, &SettingsDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  connect(buttons->button(QDialogButtonBox::RestoreDefaults), &QPushButton::clicked, this, [this] {
    const GuiSettings d;
    model_->clear(), prices_->clear(), library_->clear();
    threads_->setValue(d.threads), top_k_->setValue(d.top_k), sinks_->setValue(d.sinks), window_->setValue(d.window);
    ctx_->setValue(d.ctx), max_answer_->setValue(d.max_answer), attention_->setCurrentIndex(0), device_->setCurrentIndex(0);
    cache_budget_->setValue(d.cache_budget_gb);
    ocr_->setChecked(d.ocr), ocr_languages_->clear();
  });
  v->addWidget(buttons);
}

GuiSettings SettingsDialog::settings() const {
  GuiSettings s;
  s.model = model_->text().trimmed();
  s.threads = threads_->value();
  s.attention = attention_->currentData().toString();
  s.device = device_->currentData().toString();
  s.top_k = top_k_->value();
  s.sinks = sinks_->value();
  s.window = window_->value();
  s.ctx = ctx_->value();
  s.max_answer = max_answer_->value();
  s.cache_budget_gb = cache_budget_->value();
  s.prices = prices_->text().trimmed();
  s.library = library_->text().trimmed();
  s.ocr = ocr_->isChecked();
  s.ocr_languages = ocr_languages_->text().trimmed();
  return s;
}

void SettingsDialog::accept() {
  const QString e = settings().validate();
  if (!e.isEmpty()) {
    error_->setText(e);
    return;
  }
  QDialog::accept();
}

}  // namespace docdsa::gui
