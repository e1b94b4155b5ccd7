#include "reader.h"

#include <poppler-qt6.h>

#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QScrollArea>
#include <QScrollBar>
#include <QSpinBox>
#include <QStackedWidget>
#include <QTextBrowser>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>
#include <cmath>
#include <mutex>

#include "async.h"
#include "docdsa/app/json_text.h"
#include "heat_strip.h"
#include "library_model.h"

namespace docdsa::gui {

namespace {

QString norm_word(QString w) {
  w = w.toLower();
  w.removeIf([](QChar c) { return !c.isLetterOrNumber(); });
  return w;
}

QStringList words_of(const QString& s) {
  QStringList out;
  for (const QString& w : s.split(QRegularExpression(QStringLiteral("\\s+")), Qt::SkipEmptyParts)) {
    const QString n = norm_word(w);
    if (!n.isEmpty()) out << n;
  }
  return out;
}

QColor heat_colour(float t) {  // t in 0..1
  return QColor::fromHsvF(0.13f - 0.07f * t, 0.12f + 0.45f * t, 1.0f);
}

// The words of a page that a rubber band touches, in reading order, one line per line.
QString words_in(const PageWords& words, const QRectF& band) {
  QString out;
  double last_y = -1, last_h = 0;
  for (const auto& [box, text] : words) {
    if (!band.intersects(box)) continue;
    if (!out.isEmpty())
      out +=
          std::abs(box.center().y() - last_y) > 0.5 * std::max(last_h, box.height()) ? QStringLiteral("\n") : QStringLiteral(" ");
    out += text;
    last_y = box.center().y();
    last_h = box.height();
  }
  return out;
}

}  // namespace

struct PdfHandle {
  std::mutex m;  // the pool has one thread; the lock documents (and guards) the single user
  std::unique_ptr<Poppler::Document> doc;
  int pages = 0;
};

struct PageRender {
  quint64 gen = 0;  // 0: skipped (a newer request came first)
  int page = 0;
  QImage image;
  QSizeF points;
  std::vector<std::pair<QRectF, float>> marks;
  std::shared_ptr<const PageWords> words;      // Poppler's text boxes, or the OCR words
  std::shared_ptr<const PageWords> ocr_words;  // the OCR words when this job loaded them (for the reader to keep)
  int highlights = 0;
};

namespace {

struct OpenResult {
  std::shared_ptr<PdfHandle> pdf;
  QString why;  // when not opened
};

OpenResult open_pdf(const QString& path, const QString& password) {
  auto d = Poppler::Document::load(path, password.toUtf8(), password.toUtf8());
  if (!d) return {nullptr, QObject::tr("missing or damaged")};
  if (d->isLocked()) return {nullptr, QObject::tr("locked")};
  d->setRenderHint(Poppler::Document::Antialiasing);
  d->setRenderHint(Poppler::Document::TextAntialiasing);
  auto h = std::make_shared<PdfHandle>();
  h->pages = d->numPages();
  h->doc = std::move(d);
  if (h->pages <= 0) return {nullptr, QObject::tr("no pages")};
  return {h, {}};
}

// Renders one page at `scale` (0: fit `width` pixels) and finds the source passages on it.
// A scanned page has no text boxes: the words OCR read there stand in for them (`ocr_words`
// when the reader has them, else loaded here with `load_ocr`, off the UI thread).
PageRender render_pdf_page(const std::shared_ptr<PdfHandle>& pdf, quint64 gen,
                           const std::shared_ptr<std::atomic<quint64>>& newest, int page_no, double scale, int width, double dpr,
                           const nlohmann::json& sources, std::shared_ptr<const PageWords> ocr_words,
                           const Reader::OcrWordsLoader& load_ocr) {
  PageRender out;
  if (newest->load() != gen) return out;  // superseded while it waited
  std::lock_guard lock(pdf->m);
  // Answered even when the page cannot be had (a damaged page tree): a null image, so that
  // the reader stops waiting for this request.
  out.gen = gen;
  out.page = page_no;
  std::unique_ptr<Poppler::Page> page = pdf->doc->page(page_no - 1);
  if (!page) return out;
  out.points = page->pageSizeF();
  if (scale <= 0) scale = std::max(0.25, (width - 24) / std::max(1.0, out.points.width()));
  const double dpi = 72.0 * scale * dpr;
  out.image = page->renderToImage(dpi, dpi);
  out.image.setDevicePixelRatio(dpr);
  auto text = std::make_shared<PageWords>();
  for (const auto& b : page->textList()) text->emplace_back(b->boundingBox(), b->text());
  out.words = std::move(text);
  if (out.words->empty() && (ocr_words || load_ocr)) {
    if (!ocr_words) {
      auto loaded = std::make_shared<PageWords>();
      for (const auto& w : load_ocr(page_no))
        loaded->emplace_back(QRectF(QPointF(w.x0, w.y0), QPointF(w.x1, w.y1)), QString::fromStdString(w.text));
      ocr_words = out.ocr_words = std::move(loaded);
    }
    out.words = ocr_words;
  }
  const PageWords& words = *out.words;
  std::vector<QString> got;  // the page's words, normalised
  for (const auto& w : words) got.push_back(norm_word(w.second));
  for (const auto& s : sources) {
    if (app::json_int(s, "page", -1) != page_no) continue;
    const QStringList want = words_of(QString::fromStdString(app::json_string(s, "passage")));
    if (want.isEmpty()) continue;
    // The first place where the passage's opening words appear in order, then its length.
    const int lead = std::min<int>(4, static_cast<int>(want.size()));
    for (size_t i = 0; i + static_cast<size_t>(lead) <= got.size(); ++i) {
      bool match = true;
      for (int k = 0; k < lead && match; ++k) match = got[i + static_cast<size_t>(k)] == want[k];
      if (!match) continue;
      const float w = static_cast<float>(app::json_number(s, "weight", 0.5));
      for (size_t k = i; k < std::min(got.size(), i + static_cast<size_t>(want.size())); ++k)
        out.marks.emplace_back(words[k].first, std::clamp(0.4f + w, 0.0f, 1.0f));
      ++out.highlights;
      break;
    }
  }
  return out;
}

}  // namespace

// ---- PdfPageView -----------------------------------------------------------------------------

PdfPageView::PdfPageView(QWidget* parent) : QWidget(parent) {
  setCursor(Qt::IBeamCursor);
  setFocusPolicy(Qt::ClickFocus);
}

void PdfPageView::set_page(QImage image, QSizeF page_points, std::vector<std::pair<QRectF, float>> highlights) {
  image_ = std::move(image);
  points_ = page_points;
  highlights_ = std::move(highlights);
  band_ = {};
  setFixedSize(image_.size());
  update();
}

QRectF PdfPageView::to_points(const QRect& r) const {
  if (image_.isNull() || points_.isEmpty()) return {};
  const double sx = points_.width() / image_.width(), sy = points_.height() / image_.height();
  return QRectF(r.x() * sx, r.y() * sy, r.width() * sx, r.height() * sy);
}

void PdfPageView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.drawImage(0, 0, image_);
  if (!image_.isNull() && !points_.isEmpty()) {
    const double sx = image_.width() / points_.width(), sy = image_.height() / points_.height();
    p.setPen(Qt::NoPen);
    for (const auto& [r, w] : highlights_) {
      QColor c(255, 140, 0);
      c.setAlphaF(0.25f + 0.3f * w);
      p.setBrush(c);
      p.drawRect(QRectF(r.x() * sx - 1, r.y() * sy - 1, r.width() * sx + 2, r.height() * sy + 2));
    }
  }
  if (!band_.isNull()) {
    QColor c = palette().color(QPalette::Highlight);
    c.setAlpha(60);
    p.setBrush(c);
    p.setPen(palette().color(QPalette::Highlight));
    p.drawRect(band_.normalized());
  }
}

void PdfPageView::mousePressEvent(QMouseEvent* e) {
  drag_from_ = e->position().toPoint();
  band_ = QRect(drag_from_, QSize(1, 1));
  update();
}
void PdfPageView::mouseMoveEvent(QMouseEvent* e) {
  band_ = QRect(drag_from_, e->position().toPoint()).normalized();
  update();
}
void PdfPageView::mouseReleaseEvent(QMouseEvent* e) {
  band_ = QRect(drag_from_, e->position().toPoint()).normalized();
  if (band_.width() > 3 && band_.height() > 3 && text_in_) {
    selected_ = text_in_(to_points(band_)).trimmed();
    if (!selected_.isEmpty()) {
      QApplication::clipboard()->setText(selected_, QClipboard::Selection);
      emit text_selected(selected_);
    }
  }
  update();
}

// ---- Reader -----------------------------------------------------------------------------------

Reader::Reader(QWidget* parent) : QWidget(parent) {
  pool_.setMaxThreadCount(1);
  pool_.setObjectName(QStringLiteral("docdsa-reader"));
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);
  title_ = new QLabel(tr("Open a document from the library."), this);
  title_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  title_->setWordWrap(true);
  outer->addWidget(title_);

  pdf_bar_ = new QWidget(this);
  auto* bar = new QHBoxLayout(pdf_bar_);
  bar->setContentsMargins(0, 0, 0, 0);
  auto* prev = new QToolButton(pdf_bar_);
  prev->setText(QStringLiteral("◀"));
  prev->setToolTip(tr("Previous page (Page Up)"));
  prev->setShortcut(QKeySequence(Qt::Key_PageUp));
  auto* next = new QToolButton(pdf_bar_);
  next->setText(QStringLiteral("▶"));
  next->setToolTip(tr("Next page (Page Down)"));
  next->setShortcut(QKeySequence(Qt::Key_PageDown));
  page_spin_ = new QSpinBox(pdf_bar_);
  page_spin_->setMinimum(1);
  page_spin_->setAccessibleName(tr("Page"));
  page_total_ = new QLabel(pdf_bar_);
  zoom_box_ = new QComboBox(pdf_bar_);
  zoom_box_->addItems({tr("Fit width"), QStringLiteral("50%"), QStringLiteral("75%"), QStringLiteral("100%"),
                       QStringLiteral("125%"), QStringLiteral("150%"), QStringLiteral("200%")});
  zoom_box_->setCurrentIndex(0);
  zoom_box_->setAccessibleName(tr("Zoom"));
  auto* copy = new QToolButton(pdf_bar_);
  copy->setText(tr("Copy"));
  copy->setToolTip(tr("Copy the text selected on the page (drag over the page to select)"));
  bar->addWidget(prev);
  bar->addWidget(page_spin_);
  bar->addWidget(page_total_);
  bar->addWidget(next);
  bar->addSpacing(12);
  bar->addWidget(new QLabel(tr("Zoom"), pdf_bar_));
  bar->addWidget(zoom_box_);
  bar->addWidget(copy);
  bar->addStretch();
  outer->addWidget(pdf_bar_);

  auto* body = new QHBoxLayout();
  stack_ = new QStackedWidget(this);
  scroll_ = new QScrollArea(stack_);
  scroll_->setAlignment(Qt::AlignHCenter | Qt::AlignTop);
  scroll_->setBackgroundRole(QPalette::Dark);
  page_view_ = new PdfPageView(scroll_);
  scroll_->setWidget(page_view_);
  scroll_->viewport()->installEventFilter(this);
  text_ = new QTextBrowser(stack_);
  text_->setOpenLinks(false);
  stack_->addWidget(scroll_);
  stack_->addWidget(text_);
  strip_ = new HeatStrip(this);
  body->addWidget(stack_, 1);
  body->addWidget(strip_);
  outer->addLayout(body, 1);
  pdf_bar_->hide();

  connect(prev, &QToolButton::clicked, this, [this] {
    if (page_ > 1) page_spin_->setValue(page_ - 1);
  });
  connect(next, &QToolButton::clicked, this, [this] {
    if (page_ < page_count()) page_spin_->setValue(page_ + 1);
  });
  connect(page_spin_, &QSpinBox::valueChanged, this, [this](int v) {
    if (v == page_) return;
    page_ = v;
    render_page();
  });
  connect(zoom_box_, &QComboBox::currentTextChanged, this, &Reader::set_zoom_text);
  // Ctrl++ / Ctrl+- step through the zoom list; Ctrl+0 fits the width.
  const auto zoom_step = [this](int d) {
    zoom_box_->setCurrentIndex(std::clamp(zoom_box_->currentIndex() + d, 1, zoom_box_->count() - 1));
  };
  for (const auto& [keys, step] :
       {std::pair{QKeySequence(QKeySequence::ZoomIn), 1}, std::pair{QKeySequence(QKeySequence::ZoomOut), -1}}) {
    auto* a = new QAction(this);
    a->setShortcut(keys);
    a->setShortcutContext(Qt::WindowShortcut);  // only the reader zooms
    connect(a, &QAction::triggered, this, [zoom_step, step] { zoom_step(step); });
    addAction(a);
  }
  auto* fit = new QAction(this);
  fit->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_0));
  fit->setShortcutContext(Qt::WindowShortcut);
  connect(fit, &QAction::triggered, this, [this] { zoom_box_->setCurrentIndex(0); });
  addAction(fit);
  connect(copy, &QToolButton::clicked, this, [this] { copy_selection(); });
  connect(page_view_, &PdfPageView::text_selected, this, [this](const QString& t) {
    emit status(tr("Selected %n character(s) — Copy or Ctrl+C puts them on the clipboard", nullptr, static_cast<int>(t.size())));
  });
  auto* copy_sc = new QAction(this);
  copy_sc->setShortcut(QKeySequence::Copy);
  copy_sc->setShortcutContext(Qt::WidgetWithChildrenShortcut);
  connect(copy_sc, &QAction::triggered, this, [this] { copy_selection(); });
  addAction(copy_sc);
  connect(strip_, &HeatStrip::segment_clicked, this, &Reader::go_to_segment);
}

Reader::~Reader() {
  newest_->store(0);  // queued jobs skip their work
  pool_.clear();
  pool_.waitForDone();  // at most the one page being rendered
}

bool Reader::eventFilter(QObject* o, QEvent* e) {
  if (o == scroll_->viewport() && e->type() == QEvent::Resize && pdf_ && zoom_ <= 0 &&
      std::abs(scroll_->viewport()->width() - rendered_for_width_) > 8)
    QTimer::singleShot(0, this, [this] { render_page(); });
  return QWidget::eventFilter(o, e);
}

QString Reader::copy_selection() {
  QString t = stack_->currentWidget() == text_ ? text_->textCursor().selectedText() : page_view_->selected_text();
  if (!t.isEmpty()) {
    QApplication::clipboard()->setText(t);
    emit status(tr("Copied %n character(s)", nullptr, static_cast<int>(t.size())));
  }
  return t;
}

void Reader::clear() {
  doc_ = {};
  segs_.clear();
  ocr_words_.clear();
  ocr_loader_ = {};
  sizes_.clear();
  heat_.clear();
  sources_ = nlohmann::json::array();
  pdf_.reset();
  n_pages_ = 0;
  newest_->fetch_add(1);  // whatever is in flight is for another document
  opened_gen_ = 0, pending_ = 0, opening_ = false, shown_page_ = 0;
  words_.reset();
  title_->setText(tr("Open a document from the library."));
  pdf_bar_->hide();
  text_->clear();
  stack_->setCurrentWidget(text_);
  strip_->set_data({}, {});
}

void Reader::show_document(const storage::DocumentRow& doc, std::vector<storage::SegmentRow> segs, const QString& password,
                           OcrWordsLoader ocr_words) {
  doc_ = doc;
  ocr_words_.clear();
  ocr_loader_ = std::move(ocr_words);
  segs_ = std::move(segs);
  sizes_.clear();
  for (const auto& seg : segs_) sizes_.push_back(static_cast<float>(std::max<size_t>(seg.text.size(), 1)));
  heat_.assign(segs_.size(), 0.0f);
  sources_ = nlohmann::json::array();
  pdf_.reset();
  n_pages_ = 0;
  pending_ = 0, shown_page_ = 0;
  words_.reset();
  page_ = 1;
  const QString path = QString::fromStdString(doc.path);
  QString title = doc.title.empty() ? QFileInfo(path).fileName() : QString::fromStdString(doc.title);
  title_->setText(
      QStringLiteral("<b>%1</b> &nbsp; <span style='color:gray'>%2</span>").arg(title.toHtmlEscaped(), path.toHtmlEscaped()));
  strip_->set_data(sizes_, heat_);
  // The stored text at once; a PDF replaces it with its pages once it has opened.
  pdf_bar_->hide();
  stack_->setCurrentWidget(text_);
  render_text();
  const quint64 gen = newest_->fetch_add(1) + 1;
  opened_gen_ = gen;
  opening_ = doc.kind == "pdf";
  if (!opening_) return;
  when_done(QtConcurrent::run(&pool_, [path, password] { return open_pdf(path, password); }), this,
            [this, gen, path](const OpenResult& r) {
              if (gen != opened_gen_) return;  // another document was opened since
              opening_ = false;
              if (!r.pdf) {
                emit status(tr("%1 could not be rendered (%2); showing its stored text").arg(path, r.why));
                emit document_opened(false);
                return;
              }
              pdf_ = r.pdf;
              n_pages_ = r.pdf->pages;
              pdf_bar_->show();
              {
                const QSignalBlocker b(page_spin_);
                page_spin_->setMaximum(n_pages_);
                page_spin_->setValue(std::clamp(page_, 1, n_pages_));
              }
              page_ = page_spin_->value();
              page_total_->setText(tr("of %1").arg(n_pages_));
              stack_->setCurrentWidget(scroll_);
              render_page();
              emit document_opened(true);
            });
}

void Reader::show_attention(const std::vector<float>& heat, const nlohmann::json& sources) {
  heat_ = heat;
  heat_.resize(segs_.size(), 0.0f);
  sources_ = sources.is_array() ? sources : nlohmann::json::array();
  strip_->set_data(sizes_, heat_);
  if (pdf_)
    render_page();
  else
    render_text();
}

void Reader::set_zoom_text(const QString& z) {
  zoom_ = z.endsWith(QLatin1Char('%')) ? z.chopped(1).toDouble() / 100.0 : 0.0;
  render_page();
}

void Reader::go_to_segment(int segment) {
  if (segment < 0 || segment >= static_cast<int>(segs_.size())) return;
  strip_->set_current(segment);
  if (pdf_) {
    const int p = std::clamp(segs_[static_cast<size_t>(segment)].page, 1, n_pages_);
    page_spin_->setValue(p);
  } else {
    text_->scrollToAnchor(QStringLiteral("seg-%1").arg(segment));
  }
}

void Reader::go_to_source(const nlohmann::json& src) {
  if (src.contains("segment") && src["segment"].is_number_integer()) return go_to_segment(src["segment"].get<int>());
  if (pdf_ && src.contains("page") && src["page"].is_number_integer()) page_spin_->setValue(src["page"].get<int>());
}

void Reader::render_page() {
  if (!pdf_) return;
  rendered_for_width_ = scroll_->viewport()->width();
  const quint64 gen = newest_->fetch_add(1) + 1;
  pending_ = gen;
  const auto ocr = ocr_words_.find(page_);
  when_done(QtConcurrent::run(&pool_, render_pdf_page, pdf_, gen, newest_, page_, zoom_, rendered_for_width_, devicePixelRatioF(),
                              sources_, ocr == ocr_words_.end() ? nullptr : ocr->second, ocr_loader_),
            this, [this, opened = opened_gen_](const PageRender& r) {
              // Words loaded for this document are kept, even when a newer request superseded the render.
              if (r.ocr_words && opened == opened_gen_) ocr_words_[r.page] = r.ocr_words;
              if (r.gen == 0 || r.gen != pending_) return;  // skipped, or a newer request is in flight
              show_rendered(r);
            });
}

void Reader::show_rendered(const PageRender& r) {
  pending_ = 0;
  if (r.image.isNull()) {  // damaged, or too large to render at this zoom: keep what is shown
    emit status(tr("Page %1 could not be rendered").arg(r.page));
    return;
  }
  shown_page_ = r.page;
  n_highlights_ = r.highlights;
  words_ = r.words;
  page_view_->set_text_source([words = words_](const QRectF& band) { return words ? words_in(*words, band) : QString(); });
  page_view_->set_page(r.image, r.points, r.marks);
  page_view_->setFixedSize(r.image.size() / r.image.devicePixelRatio());
  // Page tint by the page's share of selections; the strip marks the first segment of this page.
  float page_heat = 0, max_heat = 0;
  for (size_t i = 0; i < segs_.size() && i < heat_.size(); ++i) {
    max_heat = std::max(max_heat, heat_[i]);
    if (segs_[i].page == r.page) page_heat += heat_[i];
  }
  for (size_t i = 0; i < segs_.size(); ++i)
    if (segs_[i].page == r.page) {
      strip_->set_current(static_cast<int>(i));
      break;
    }
  if (page_heat > 0 && max_heat > 0)
    emit status(tr("Page %1: %2% of the answer's attention selections").arg(r.page).arg(100.0 * page_heat, 0, 'f', 1));
  emit page_shown(r.page);
}

void Reader::render_text() {
  const std::vector<float> level = attention_intensity(heat_, sizes_);
  // Passages to mark, by segment.
  std::map<int, std::vector<QString>> passages;
  for (const auto& s : sources_)  // stored sources: fields of another type are skipped, never thrown on
    if (const int seg = app::json_int(s, "segment", -1); seg >= 0 && !app::json_string(s, "passage").empty())
      passages[seg].push_back(QString::fromStdString(app::json_string(s, "passage")));
  n_highlights_ = 0;
  QString html = QStringLiteral("<html><body style='font-size:11pt'>");
  for (size_t i = 0; i < segs_.size(); ++i) {
    const auto& s = segs_[i];
    QString body = QString::fromStdString(s.text).toHtmlEscaped();
    auto it = passages.find(static_cast<int>(i));
    if (it != passages.end()) {
      for (QString p : it->second) {
        const QString sp = QString::fromStdString(s.speaker);
        if (!sp.isEmpty() && p.startsWith(sp + QLatin1Char(':'))) p = p.mid(sp.size() + 1).trimmed();
        QString esc = p.toHtmlEscaped();
        // The passage, or failing that its opening words.
        int at = body.indexOf(esc.left(60));
        if (at < 0) continue;
        const int len = std::min<int>(static_cast<int>(esc.size()), static_cast<int>(body.size()) - at);
        body = body.left(at) + QStringLiteral("<span style='background:#ffb347;text-decoration:underline'>") + body.mid(at, len) +
               QStringLiteral("</span>") + body.mid(at + len);
        ++n_highlights_;
      }
    }
    body.replace(QLatin1Char('\n'), QStringLiteral("<br>"));
    QString bg;
    if (level[i] > 0) bg = QStringLiteral(" style='background:%1'").arg(heat_colour(level[i]).name());
    QString head;
    if (s.start_ms >= 0) head += QStringLiteral("<span style='color:#666'>%1</span> ").arg(format_duration(s.start_ms));
    if (!s.speaker.empty()) head += QStringLiteral("<b>%1</b>: ").arg(QString::fromStdString(s.speaker).toHtmlEscaped());
    if (s.page > 0) head += QStringLiteral("<span style='color:#666'>[page %1]</span> ").arg(s.page);
    html += QStringLiteral("<a name='seg-%1'></a><p%2>%3%4</p>").arg(i).arg(bg, head, body);
  }
  html += QStringLiteral("</body></html>");
  const int y = text_->verticalScrollBar()->value();
  text_->setHtml(html);
  text_->verticalScrollBar()->setValue(y);
}

}  // namespace docdsa::gui
