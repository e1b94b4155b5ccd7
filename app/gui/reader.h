// The reader: PDF pages rendered with poppler-qt6 (zoom, page navigation, text selection) or
// a transcript with timestamps and speakers, plus the heat strip. For the selected answer it
// highlights the passages the model attended and tints where its selections fell.
// Opening and rendering a PDF run on the reader's own one-thread pool (a Poppler document is
// used by one thread at a time), never on the UI thread; the newest page request wins.
#pragma once

#include <QThreadPool>
#include <QWidget>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "docdsa/storage/library.h"

class QComboBox;
class QLabel;
class QScrollArea;
class QSpinBox;
class QStackedWidget;
class QTextBrowser;
class QToolButton;

namespace docdsa::gui {

class HeatStrip;
using PageWords = std::vector<std::pair<QRectF, QString>>;  // a page's words and their boxes (points)
struct PdfHandle;   // the open Poppler document, shared with the render jobs
struct PageRender;  // one rendered page, as a render job returns it

// One PDF page as an image, with attention highlights and a rubber-band text selection.
class PdfPageView : public QWidget {
  Q_OBJECT
 public:
  explicit PdfPageView(QWidget* parent = nullptr);
  void set_page(QImage image, QSizeF page_points, std::vector<std::pair<QRectF, float>> highlights);
  QString selected_text() const { return selected_; }
  void set_text_source(std::function<QString(const QRectF&)> f) { text_in_ = std::move(f); }
  QSize sizeHint() const override { return image_.size(); }
  int mark_count() const { return static_cast<int>(highlights_.size()); }  // words marked on the page

 signals:
  void text_selected(const QString& text);

 protected:
  void paintEvent(QPaintEvent*) override;
  void mousePressEvent(QMouseEvent*) override;
  void mouseMoveEvent(QMouseEvent*) override;
  void mouseReleaseEvent(QMouseEvent*) override;

 private:
  QRectF to_points(const QRect& r) const;
  QImage image_;
  QSizeF points_;
  std::vector<std::pair<QRectF, float>> highlights_;  // page points, weight 0..1
  QPoint drag_from_;
  QRect band_;
  QString selected_;
  std::function<QString(const QRectF&)> text_in_;
};

class Reader : public QWidget {
  Q_OBJECT
 public:
  explicit Reader(QWidget* parent = nullptr);
  ~Reader() override;
  // Opens a stored document. PDFs are rendered from the file (with `password` if encrypted);
  // when the file is gone, its stored text is shown instead.
  // `ocr_words`: loads the words OCR read on one scanned page (Library::ocr_words(doc, page)),
  // marked on it like Poppler's text boxes on a text page. Called on the reader's render thread,
  // only for a page without a text layer, once per page: the words are kept and shared by later
  // renders, not copied.
  using OcrWordsLoader = std::function<std::vector<storage::OcrWordRow>(int page)>;
  void show_document(const storage::DocumentRow& doc, std::vector<storage::SegmentRow> segs, const QString& password = {},
                     OcrWordsLoader ocr_words = {});
  void clear();
  // The answer's attention: share per stored segment, and its top sources (with passages).
  void show_attention(const std::vector<float>& heat, const nlohmann::json& sources);
  void go_to_source(const nlohmann::json& source);
  void go_to_segment(int segment);
  int current_page() const { return page_; }
  int page_count() const { return n_pages_; }  // 0 until the PDF has opened
  // A PDF is opening or a page rendering; page_shown / document_opened follow.
  bool rendering() const { return opening_ || pending_ != 0; }
  int shown_page() const { return shown_page_; }  // the page the view holds now (0: none)
  qint64 document_id() const { return doc_.id; }
  QString copy_selection();  // copies and returns the selected text
  HeatStrip* heat_strip() const { return strip_; }
  QTextBrowser* transcript_view() const { return text_; }
  PdfPageView* page_view() const { return page_view_; }
  int highlight_count() const { return n_highlights_; }

 signals:
  void status(const QString& message);
  void document_opened(bool rendered);  // the PDF opened (or not: its stored text is shown)
  void page_shown(int page);            // the newest requested page is on screen

 private:
  void render_page();
  void show_rendered(const PageRender& r);
  void render_text();
  void set_zoom_text(const QString& z);
  bool eventFilter(QObject* o, QEvent* e) override;  // fit-width pages follow the viewport's width
  storage::DocumentRow doc_;
  std::vector<storage::SegmentRow> segs_;
  std::vector<float> heat_;
  std::vector<float> sizes_;  // per segment: its length in characters (at least 1), for the heat strip
  nlohmann::json sources_ = nlohmann::json::array();
  std::shared_ptr<PdfHandle> pdf_;
  int n_pages_ = 0;
  QThreadPool pool_;  // one thread: every Poppler call for this reader, in order
  // Generations: a job whose number is no longer the newest is skipped or its result dropped.
  std::shared_ptr<std::atomic<quint64>> newest_ = std::make_shared<std::atomic<quint64>>(0);
  quint64 opened_gen_ = 0;  // the newest show_document()
  quint64 pending_ = 0;     // the render request in flight (0: none)
  bool opening_ = false;
  int shown_page_ = 0;
  std::shared_ptr<const PageWords> words_;  // the shown page's words, for selection
  OcrWordsLoader ocr_loader_;
  std::map<int, std::shared_ptr<const PageWords>> ocr_words_;  // scanned pages loaded so far: page -> OCR words (points)
  int page_ = 1;       // 1-based
  double zoom_ = 1.0;  // 0: fit width
  int n_highlights_ = 0;
  int rendered_for_width_ = 0;
  QStackedWidget* stack_ = nullptr;
  QScrollArea* scroll_ = nullptr;
  PdfPageView* page_view_ = nullptr;
  QTextBrowser* text_ = nullptr;
  HeatStrip* strip_ = nullptr;
  QLabel* title_ = nullptr;
  QWidget* pdf_bar_ = nullptr;
  QSpinBox* page_spin_ = nullptr;
  QLabel* page_total_ = nullptr;
  QComboBox* zoom_box_ = nullptr;
};

}  // namespace docdsa::gui
