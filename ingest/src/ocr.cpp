#include "docdsa/ingest/ocr.h"

#include "docdsa/ingest/ocr_bands.h"
#include "docdsa/engine/thread_pool.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <poppler-qt6.h>
#include <tesseract/baseapi.h>
#include <tesseract/ocrclass.h>
#include <tesseract/resultiterator.h>

#include <spdlog/spdlog.h>
#include <QByteArray>
#include <QImage>
#include <QPainter>
#include <QTransform>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace docdsa::ingest {

namespace fs = std::filesystem;

int ocr_render_dpi(double width_pt, double height_pt, int dpi) {
  if (dpi < 1) dpi = 1;
  const double area_in = std::max(width_pt, 1.0) / 72.0 * std::max(height_pt, 1.0) / 72.0;  // square inches
  const double max_dpi = std::sqrt(static_cast<double>(kMaxOcrPixels) / area_in);
  return std::max(1, std::min(dpi, static_cast<int>(std::floor(max_dpi))));
}

std::string find_tessdata_dir(const std::vector<std::string>& candidates) {
  for (const auto& dir : candidates) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (it->path().extension() == ".traineddata") return dir;
  }
  return {};
}

std::string tessdata_dir() {
  static const std::string dir = [] {
    // Tesseract 5 reads $TESSDATA_PREFIX as the tessdata folder itself.
    if (const char* p = std::getenv("TESSDATA_PREFIX"); p && *p) return std::string(p);
    // Where the packages put the data, found from its files: asking Tesseract (its compiled-in
    // default) means TessBaseAPI::Init, which loads a model, and the GUI's settings dialog asks
    // for the default languages on the UI thread.
    if (std::string found = find_tessdata_dir({"/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                                               "/usr/share/tessdata", "/usr/local/share/tessdata"});
        !found.empty())
      return found;
    // Elsewhere (a build of its own): Tesseract's default, which only an initialised API reports.
    for (const char* lang : {"eng", "osd"}) {
      tesseract::TessBaseAPI api;
      api.SetVariable("debug_file", "/dev/null");
      if (api.Init(nullptr, lang, lang[0] == 'o' ? tesseract::OEM_TESSERACT_ONLY : tesseract::OEM_LSTM_ONLY) == 0)
        return std::string(api.GetDatapath());
    }
    // Nothing installed at all: where Debian's packages put the data, for the message.
    return std::string("/usr/share/tesseract-ocr/5/tessdata/");
  }();
  return dir;
}

std::vector<std::string> installed_ocr_languages() {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(tessdata_dir(), ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path p = it->path();
    if (p.extension() != ".traineddata") continue;
    const std::string lang = p.stem().string();
    if (lang != "osd" && lang != "equ") out.push_back(lang);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string default_ocr_languages() {
  std::string langs = "eng";
  for (const auto& l : installed_ocr_languages())
    if (l != "eng") langs += "+" + l;
  return langs;
}

std::string ocr_language_package(const std::string& lang) {
  std::string p = "tesseract-ocr-";
  for (char c : lang) p += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return p;
}

Result<std::string> check_ocr_languages(const std::string& languages) {
  const std::string want = languages.empty() ? default_ocr_languages() : languages;
  std::vector<std::string> langs;
  for (size_t start = 0; start <= want.size();) {
    size_t end = want.find('+', start);
    if (end == std::string::npos) end = want.size();
    const std::string l = want.substr(start, end - start);
    if (l.empty() || l.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != std::string::npos)
      return make_error(ErrorCode::kInvalidArgument,
                        "OCR languages '" + want + "': expected Tesseract language codes joined by '+', e.g. eng+fra");
    langs.push_back(l);
    start = end + 1;
  }
  const std::string dir = tessdata_dir();
  std::string missing, packages;
  std::set<std::string> seen;
  std::string out;
  for (const auto& l : langs) {
    if (!seen.insert(l).second) continue;
    if (!out.empty()) out += "+";
    out += l;
    std::error_code ec;
    if (fs::is_regular_file(fs::path(dir) / (l + ".traineddata"), ec)) continue;
    if (!missing.empty()) missing += ", ";
    missing += "'";
    missing += l;
    missing += "'";
    packages += ' ';
    packages += ocr_language_package(l);
  }
  if (!missing.empty())
    return make_error(ErrorCode::kNotFound, "OCR language " + missing + " is not installed (no such .traineddata in " + dir +
                                                "); install the Debian package" + packages + " (apt-get install" + packages +
                                                ")");
  return out;
}

namespace {

// What Tesseract's monitor polls (per word) to stop within a page.
struct StopFlag {
  std::atomic<bool>* stop;
  const std::function<bool()>* cancelled;
  bool check() const {
    if (!stop->load() && *cancelled && (*cancelled)()) stop->store(true);
    return stop->load();
  }
};

// The words an API has recognised in a band whose top left pixel is (`x0`, `y0`) of an image of
// `w` x `h` pixels that was the page turned clockwise by `rotation` degrees; boxes go back to
// the unturned page, in points.
OcrPage collect(tesseract::TessBaseAPI& api, int x0, int y0, int rotation, int w, int h, double px_to_pt) {
  OcrPage page;
  std::unique_ptr<tesseract::ResultIterator> it(api.GetIterator());
  if (!it) return page;
  // (w, h): the unturned image's size; the iterator's boxes are in the turned image.
  const auto back = [&](double x, double y) -> std::pair<double, double> {
    switch (rotation) {
      case 90:
        return {y, h - x};
      case 180:
        return {w - x, h - y};
      case 270:
        return {w - y, x};
      default:
        return {x, y};
    }
  };
  double conf_sum = 0;
  do {
    if (it->Empty(tesseract::RIL_WORD)) continue;
    std::unique_ptr<char[]> raw(it->GetUTF8Text(tesseract::RIL_WORD));
    if (!raw) continue;
    std::string word(raw.get());
    const size_t a = word.find_first_not_of(" \t\r\n");
    if (a == std::string::npos) continue;
    word = word.substr(a, word.find_last_not_of(" \t\r\n") - a + 1);
    if (!page.text.empty()) {
      if (it->IsAtBeginningOf(tesseract::RIL_PARA))
        page.text += "\n\n";
      else if (it->IsAtBeginningOf(tesseract::RIL_TEXTLINE))
        page.text += "\n";
      else
        page.text += " ";
    }
    page.text += word;
    int l = 0, t = 0, r = 0, b = 0;
    it->BoundingBox(tesseract::RIL_WORD, &l, &t, &r, &b);
    const auto [xx0, yy0] = back(l + x0, t + y0);
    const auto [xx1, yy1] = back(r + x0, b + y0);
    OcrWord ow;
    ow.x0 = static_cast<float>(std::min(xx0, xx1) * px_to_pt);
    ow.y0 = static_cast<float>(std::min(yy0, yy1) * px_to_pt);
    ow.x1 = static_cast<float>(std::max(xx0, xx1) * px_to_pt);
    ow.y1 = static_cast<float>(std::max(yy0, yy1) * px_to_pt);
    ow.confidence = std::clamp(it->Confidence(tesseract::RIL_WORD), 0.0f, 100.0f);
    conf_sum += ow.confidence;
    ow.text = std::move(word);
    page.words.push_back(std::move(ow));
  } while (it->Next(tesseract::RIL_WORD));
  if (!page.words.empty()) page.mean_confidence = static_cast<float>(conf_sum / static_cast<double>(page.words.size()));
  return page;
}

// A worker's Tesseract: one recognition API per language order it has needed (the order asked
// for, and the one with a page's own language first), and, when osd.traineddata is installed,
// an orientation-detection API. Made on first use.
struct Reader {
  std::string dir;
  std::map<std::string, std::unique_ptr<tesseract::TessBaseAPI>> ocr;  // by languages, e.g. "fra+eng"
  std::unique_ptr<tesseract::TessBaseAPI> osd;
  bool osd_tried = false;

  Result<tesseract::TessBaseAPI*> get(const std::string& langs) {
    auto& api = ocr[langs];
    if (api) return api.get();
    auto made = std::make_unique<tesseract::TessBaseAPI>();
    made->SetVariable("debug_file", "/dev/null");  // Tesseract's chatter (resolution guesses, …) stays off stderr
    if (made->Init(dir.c_str(), langs.c_str(), tesseract::OEM_LSTM_ONLY) != 0)
      return make_error(ErrorCode::kNotFound, "Tesseract could not load the OCR languages '" + langs + "' from " + dir);
    made->SetPageSegMode(tesseract::PSM_AUTO);
    // No second, inverted reading of lines it is unsure of (white on black is rare in scans):
    // a large share of the time on a poor page, little gain.
    made->SetVariable("tessedit_do_invert", "0");
    api = std::move(made);
    return api.get();
  }

  tesseract::TessBaseAPI* orientation(bool installed) {
    if (!osd_tried && installed) {
      osd_tried = true;
      osd = std::make_unique<tesseract::TessBaseAPI>();
      osd->SetVariable("debug_file", "/dev/null");
      if (osd->Init(dir.c_str(), "osd", tesseract::OEM_TESSERACT_ONLY) != 0)
        osd.reset();
      else
        osd->SetPageSegMode(tesseract::PSM_OSD_ONLY);
    }
    return osd.get();
  }
};

// Readers outlive a call, for the next file: loading the languages (TessBaseAPI::Init) costs each
// worker 0.05 s of CPU for eng, 0.1 s for eng+fra and 0.04 s for orientation detection, a few
// percent of a one-page scan's time, paid again for every file of a folder. At most one idle
// reader per core is kept (a call uses no more workers by default), without its orientation
// detection (27 MB, and only turned pages need it): 15 MB for eng, 40 MB with fra+eng.
class ReaderPool {
 public:
  std::unique_ptr<Reader> take(const std::string& dir) {
    {
      std::lock_guard lock(m_);
      for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        if ((*it)->dir != dir) continue;
        std::unique_ptr<Reader> r = std::move(*it);
        idle_.erase(it);
        return r;
      }
    }
    auto r = std::make_unique<Reader>();
    r->dir = dir;
    return r;
  }
  void give_back(std::unique_ptr<Reader> r) {
    r->osd.reset();
    r->osd_tried = false;
    std::lock_guard lock(m_);
    if (idle_.size() < static_cast<size_t>(std::max(1, available_cpus()))) idle_.push_back(std::move(r));
  }

 private:
  std::mutex m_;
  std::vector<std::unique_ptr<Reader>> idle_;
};

// Never destroyed: at exit Tesseract's own static data may already be gone.
ReaderPool& reader_pool() {
  static ReaderPool* pool = new ReaderPool;
  return *pool;
}

// A worker's reader, from the pool and back to it, unless something threw while it was in use
// (then its Tesseract state is unknown, and it is dropped).
class ReaderLease {
 public:
  explicit ReaderLease(const std::string& dir) : reader_(reader_pool().take(dir)) {}
  ~ReaderLease() {
    if (reader_) reader_pool().give_back(std::move(reader_));
  }
  ReaderLease(const ReaderLease&) = delete;
  ReaderLease& operator=(const ReaderLease&) = delete;
  Reader& operator*() { return *reader_; }
  void drop() { reader_.reset(); }

 private:
  std::unique_ptr<Reader> reader_;
};

// A band of at least this share of its page's work holds enough words (20 on a dense page) to
// tell a page upside down: see start_attempt.
constexpr double kMinProbeBandWork = 0.05;

// Every pixel of the page (sampled every 4th row and column) nearly the same grey.
bool nearly_blank(const QImage& img) {
  int lo = 255, hi = 0;
  for (int y = 0; y < img.height() && hi - lo < 32; y += 4) {
    const uchar* row = img.constScanLine(y);
    for (int x = 0; x < img.width(); x += 4) lo = std::min<int>(lo, row[x]), hi = std::max<int>(hi, row[x]);
  }
  return hi - lo < 32;
}

// Page `index` (0-based) of `doc` as 8-bit grey at `dpi`; null when it cannot be rendered.
// A plain scan (a page without fonts or annotations) is painted by Poppler's QPainter backend
// straight into a grey image: Splash draws a 300 dpi scan through a bilinear rescale into an RGB
// image that then needs converting, 0.24 s of CPU on a US letter page against 0.08 s here, on the
// path of every one-page file (the other worker has nothing to read meanwhile), for the same
// words. Smooth pixmap transforms keep a skewed scan's strokes whole (without them the skewed
// corpus page's word error rate went from 4% to 11%). Splash draws the rest: the QPainter backend
// draws glyphs with QRawFont, which crashes without a QGuiApplication (the CLI and the tests
// have none), and an annotation may bring text that is not among the page's fonts (Poppler makes
// a missing appearance when it draws it); and a page that the QPainter backend leaves blank (it
// lacks a few of Splash's features).
QImage render_gray(Poppler::Document& doc, const Poppler::Page& page, int index, int dpi) {
  std::unique_ptr<Poppler::FontIterator> fonts = doc.newFontIterator(index);
  const bool plain_scan = fonts && !(fonts->hasNext() && !fonts->next().isEmpty()) && page.annotations().empty();
  const QSizeF pts = page.pageSizeF();
  if (plain_scan) {
    QImage img(static_cast<int>(std::lround(pts.width() * dpi / 72.0)), static_cast<int>(std::lround(pts.height() * dpi / 72.0)),
               QImage::Format_Grayscale8);
    if (!img.isNull()) {
      img.fill(255);
      doc.setRenderBackend(Poppler::Document::QPainterBackend);
      bool painted = false;
      {
        QPainter painter(&img);
        painter.setRenderHint(QPainter::SmoothPixmapTransform);
        painted = page.renderToPainter(&painter, dpi, dpi);
      }
      if (painted && !nearly_blank(img)) return img;
    }
  }
  doc.setRenderBackend(Poppler::Document::SplashBackend);
  QImage img = page.renderToImage(dpi, dpi);
  return img.isNull() ? img : img.convertToFormat(QImage::Format_Grayscale8);
}

// Words found times their mean confidence: how well a reading went, to compare turns.
double score(const OcrPage& p) {
  return p.words.empty() ? 0.0 : p.mean_confidence * static_cast<double>(p.words.size());
}

bool good(const OcrPage& p) {
  return p.words.size() >= 10 && p.mean_confidence >= kSureOcrConfidence;
}

// A page on its way through the workers: rendered once, then read in one or more attempts
// (upright, then turned), each attempt in bands that any worker may read.
struct PageJob {
  size_t index = 0;  // in `pages`
  int number = 0;
  int dpi = 0;
  QImage img;  // as rendered, 8-bit grey
  std::vector<std::string> warnings;
  OcrPage best;
  std::string langs;               // the language order its attempts are read with (its own language first, once known)
  bool reread = false;             // read again with its own language first (once at most)
  bool orientation_known = false;  // orientation detection has run (its answer is in turns_left)
  std::vector<int> turns_left;     // the turns still to try
};

struct Attempt {
  std::shared_ptr<PageJob> page;
  int rotation = 0;
  std::string langs;  // the language order it is read with
  QImage turned;
  std::vector<OcrBand> bands;
  std::vector<OcrPage> results;  // per band
  size_t left = 0;               // bands not read yet
  // An upright attempt whose first band reads as garbage (a page upside down) is given up at
  // once, in-flight bands too, for orientation detection, instead of reading the whole page.
  bool may_abandon = false;
  std::atomic<bool> abandoned{false};
};

// Stops a band's recognition: Cancel, or its attempt given up.
struct BandStop {
  const StopFlag* stop;
  const std::atomic<bool>* abandoned;
};

bool band_cancel_requested(void* flag, int) {
  const auto* b = static_cast<const BandStop*>(flag);
  return b->abandoned->load() || b->stop->check();
}

struct Task {
  std::shared_ptr<Attempt> attempt;
  size_t band = 0;
};

// One attempt's bands joined into the page's reading.
OcrPage merge(const Attempt& a) {
  OcrPage p;
  double conf_sum = 0;
  for (size_t i = 0; i < a.results.size(); ++i) {
    const OcrPage& r = a.results[i];
    if (r.words.empty()) continue;
    if (!p.text.empty()) p.text += i > 0 && a.bands[i - 1].paragraph_after ? "\n\n" : "\n";
    p.text += r.text;
    for (const auto& w : r.words) conf_sum += w.confidence;
    p.words.insert(p.words.end(), r.words.begin(), r.words.end());
  }
  if (!p.words.empty()) p.mean_confidence = static_cast<float>(conf_sum / static_cast<double>(p.words.size()));
  p.rotation = a.rotation;
  p.bands = static_cast<int>(a.bands.size());
  return p;
}

}  // namespace

// Words that only one of these languages uses often; enough of them in a band read with another
// language first says the band is in this one.
namespace {
const std::map<std::string, std::set<std::string>>& stopwords() {
  static const std::map<std::string, std::set<std::string>> kStopwords = {
      {"eng", {"the", "and", "of", "to", "is", "that", "for", "with", "was", "are", "this", "from", "which", "have", "it"}},
      {"fra", {"le",  "la", "les", "des",  "du",  "et",   "est",   "une", "dans", "pour", "que",  "qui",
               "sur", "au", "aux", "avec", "pas", "sont", "cette", "il",  "elle", "nous", "vous", "par"}},
      {"deu", {"der", "die", "das", "und", "ist", "nicht", "ein", "eine", "mit", "den", "dem", "sich", "auf", "für", "von"}},
      {"spa", {"el", "los", "las", "del", "y", "es", "una", "por", "con", "para", "como", "pero", "su", "lo"}},
      {"ita", {"il", "di", "che", "della", "e", "è", "non", "una", "per", "con", "gli", "del", "sono"}},
      {"nld", {"de", "het", "een", "en", "van", "niet", "dat", "zijn", "voor", "met", "ook", "wordt"}},
      {"por", {"o", "os", "da", "do", "não", "uma", "com", "para", "que", "dos", "das", "em"}},
  };
  return kStopwords;
}
}  // namespace

std::string ocr_text_language(const std::string& text, const std::vector<std::string>& candidates) {
  const auto& kStopwords = stopwords();
  std::map<std::string, int> hits;
  std::string w;
  const auto count = [&] {
    for (const auto& l : candidates)
      if (auto it = kStopwords.find(l); it != kStopwords.end() && it->second.count(w)) ++hits[l];
    w.clear();
  };
  for (const char c : text + ' ') {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalpha(u) || u >= 0x80)
      w += static_cast<char>(std::tolower(u));
    else if (!w.empty())
      count();
  }
  std::string best;
  int best_hits = 0, runner_up = 0;
  for (const auto& [l, n] : hits) {
    if (n > best_hits)
      runner_up = best_hits, best_hits = n, best = l;
    else if (n > runner_up)
      runner_up = n;
  }
  // At least a few, and clearly more than any other language: short or mixed text says nothing.
  return best_hits >= 4 && best_hits >= 2 * runner_up ? best : std::string();
}

Result<std::vector<OcrPage>> ocr_pdf_pages(const std::string& bytes, const std::string& name, const std::string& password,
                                           const std::vector<int>& pages, const OcrOptions& options, const OcrProgress& on_page) {
  std::vector<OcrPage> out(pages.size());
  if (pages.empty()) return out;
  TRY(const std::string langs, check_ocr_languages(options.languages));
  std::vector<std::string> lang_list;
  for (size_t start = 0; start <= langs.size();) {
    const size_t end = std::min(langs.find('+', start), langs.size());
    lang_list.push_back(langs.substr(start, end - start));
    start = end + 1;
  }
  // A page is read first with the first language alone when each listed language can be told
  // from its words (ocr_text_language): a page in another one is then read again with that one
  // first. Every language at once costs English pages a fifth more time for nothing (eng+fra:
  // 2.1 s against 1.6 s of CPU on the Linn page, the same words); with one that cannot be told,
  // the whole list from the start.
  const bool all_told =
      std::all_of(lang_list.begin(), lang_list.end(), [](const std::string& l) { return stopwords().count(l) > 0; });
  const std::string first_pass = all_told ? lang_list.front() : langs;
  const std::string dir = tessdata_dir();
  std::error_code ec;
  const bool with_osd = fs::is_regular_file(fs::path(dir) / "osd.traineddata", ec);
  const int cores = available_cpus();  // affinity and cgroup quota, as the engine's pool
  // Workers: as asked (all cores by default), but no more than there are bands to read.
  const int threads =
      std::clamp(options.threads > 0 ? options.threads : cores, 1, static_cast<int>(pages.size()) * kOcrBandsPerPage);
  // Pages are cut into bands whenever more than one worker reads: a fixed count, so that a
  // page reads the same on any number of cores.
  const int pieces = threads > 1 ? kOcrBandsPerPage : 1;

  // The order that reads a page in `own` best: its language first (the first pass alone for the
  // first listed language).
  const auto order_for = [&](const std::string& own) {
    if (own == lang_list.front()) return first_pass;
    std::string order = own;
    for (const auto& l : lang_list)
      if (l != own) order += "+" + l;
    return order;
  };

  std::atomic<bool> stop{false};
  const StopFlag stop_flag{&stop, &options.cancelled};
  std::mutex m;  // guards everything below, and on_page
  std::condition_variable cv;
  std::deque<Task> tasks;
  size_t next_page = 0;
  // The order a page starts with: the first pass until a page reads as another language, then
  // the latest such page's order. A French document's pages are then read once each, instead of
  // once in English and again in French (1.8 times the work of one reading).
  std::string doc_langs = first_pass;
  int done = 0;
  std::optional<Error> error;
  using clock = std::chrono::steady_clock;
  const auto ms = [](clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };

  const auto fail = [&](Error e) {
    std::lock_guard lock(m);
    if (!error) error = std::move(e);
    stop = true;
    cv.notify_all();
  };

  // Tesseract's orientation detection (osd.traineddata) on the page: sets its turns to try (the
  // one it is sure of, none when upright, all three when unsure or not installed).
  const auto detect_orientation = [&](Reader& reader, PageJob& job) {
    job.orientation_known = true;
    job.turns_left = {90, 180, 270};
    tesseract::TessBaseAPI* osd = reader.orientation(with_osd);
    if (!osd) return;
    // From a half-size image: as sure on text of normal size, and faster.
    const QImage& img = job.img;
    const QImage small =
        job.dpi >= 200 ? img.scaled(img.width() / 2, img.height() / 2, Qt::IgnoreAspectRatio, Qt::SmoothTransformation) : img;
    osd->SetImage(small.constBits(), small.width(), small.height(), 1, static_cast<int>(small.bytesPerLine()));
    osd->SetSourceResolution(job.dpi * small.width() / img.width());
    int deg = 0;
    float conf = 0, script_conf = 0;
    const char* script = nullptr;
    // orient_deg: how far the image is turned (clockwise); turning it back reads it upright.
    if (osd->DetectOrientationScript(&deg, &conf, &script, &script_conf) && conf >= 2.0f) {
      const int turn = (360 - deg) % 360;
      job.turns_left.clear();
      if (turn) job.turns_left.push_back(turn);
    }
    osd->Clear();
    spdlog::debug("ocr page {}: orientation detection: {} turn(s) to try", job.number, job.turns_left.size());
  };

  // Queues an attempt's bands, the largest first (any worker takes the next; the results keep
  // their places). A page whose lines run down it is turned first (orientation detection).
  std::function<void(Reader&, const std::shared_ptr<PageJob>&, int)> start_attempt;
  start_attempt = [&](Reader& reader, const std::shared_ptr<PageJob>& job, int rotation) {
    auto a = std::make_shared<Attempt>();
    a->page = job;
    a->rotation = rotation;
    a->langs = job->langs;
    a->turned = rotation ? job->img.transformed(QTransform().rotate(rotation)) : job->img;
    bool sideways = false;
    a->bands =
        find_ocr_bands(a->turned.constBits(), a->turned.width(), a->turned.height(), static_cast<int>(a->turned.bytesPerLine()),
                       pieces, rotation == 0 && !job->orientation_known ? &sideways : nullptr);
    if (sideways) {
      detect_orientation(reader, *job);
      if (job->turns_left.size() == 1) {
        const int turn = job->turns_left.front();
        job->turns_left.clear();
        return start_attempt(reader, job, turn);
      }
    }
    a->may_abandon = rotation == 0 && !job->orientation_known && a->bands.size() > 1;
    a->results.resize(a->bands.size());
    a->left = a->bands.size();
    std::vector<size_t> order(a->bands.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return a->bands[x].work > a->bands[y].work; });
    if (a->may_abandon) {
      // Probes first: one small band per worker (yet big enough to hold the 20 words that judge
      // it), so that a page upside down is given up after a tenth of its work, not after its
      // largest bands (half of it on the cardinal page). The rest stays largest first, which
      // balances the workers about as well.
      const auto probe_end =
          std::stable_partition(order.begin(), order.end(), [&](size_t i) { return a->bands[i].work >= kMinProbeBandWork; });
      const size_t n_probes = std::min<size_t>(static_cast<size_t>(threads), static_cast<size_t>(probe_end - order.begin()));
      std::rotate(order.begin(), probe_end - static_cast<std::ptrdiff_t>(n_probes), probe_end);
    }
    std::lock_guard lock(m);
    for (size_t i : order) tasks.push_back({a, i});
    cv.notify_all();
  };

  const auto finish_page = [&](PageJob& job, OcrPage best) {
    best.dpi = job.dpi;
    best.warnings.insert(best.warnings.begin(), job.warnings.begin(), job.warnings.end());
    if (best.rotation)
      best.warnings.push_back("page " + std::to_string(job.number) + ": turned " + std::to_string(best.rotation) +
                              "° to read it");
    if (!best.words.empty() && best.mean_confidence < kLowOcrConfidence)
      best.warnings.push_back("page " + std::to_string(job.number) + ": low OCR confidence (" +
                              std::to_string(static_cast<int>(std::lround(best.mean_confidence))) + "%)");
    std::lock_guard lock(m);
    if (stop.load()) return;
    out[job.index] = std::move(best);
    ++done;
    if (on_page && !on_page(done, static_cast<int>(pages.size()))) stop = true;
    cv.notify_all();
  };

  // The last band of an attempt is read: keep the better reading, then either the page is done
  // or the next turn is queued.
  const auto finish_attempt = [&](Reader& reader, Attempt& a) {
    PageJob& job = *a.page;
    OcrPage p = merge(a);
    if (a.abandoned.load()) {
      detect_orientation(reader, job);
      if (job.turns_left.size() == 1) {  // sure of a turn: read that
        job.best = std::move(p);
        const int turn = job.turns_left.front();
        job.turns_left.clear();
        return start_attempt(reader, a.page, turn);
      }
      return start_attempt(reader, a.page, 0);  // upright after all (or unsure): read it whole
    }
    // A page that reads as another listed language than the one its reading tried first is read
    // again with its own first: the first language's model drops the others' accents ("garçon"
    // -> "garcon"). The pages that start after it start with its order.
    if (lang_list.size() > 1 && !job.reread) {
      const std::string own = ocr_text_language(p.text, lang_list);
      if (!own.empty()) {
        const std::string order = order_for(own);
        {
          std::lock_guard lock(m);
          doc_langs = order;
        }
        if (job.langs.substr(0, job.langs.find('+')) != own) {
          job.langs = order;
          job.reread = true;
          spdlog::debug("ocr page {}: reads as '{}', read again as {}", job.number, own, job.langs);
          return start_attempt(reader, a.page, a.rotation);
        }
      }
    }
    if (a.rotation == 0) {
      job.best = std::move(p);
      // Turned 90/180/270 degrees? Orientation detection says how far; without it (or when it is
      // unsure) each turn is read and the best reading kept.
      if (!good(job.best) && !job.orientation_known) detect_orientation(reader, job);
    } else if (score(p) > 1.25 * score(job.best)) {
      job.best = std::move(p);
    }
    if (good(job.best) || job.turns_left.empty() || stop_flag.check()) {
      spdlog::debug("ocr page {}: {} words in {} band(s), turned {}", job.number, job.best.words.size(), job.best.bands,
                    job.best.rotation);
      finish_page(job, std::move(job.best));
      return;
    }
    const int turn = job.turns_left.front();
    job.turns_left.erase(job.turns_left.begin());
    start_attempt(reader, a.page, turn);
  };

  // Reads one band; true when it was its attempt's last (decided under the lock, so that one
  // worker, and only one, finishes the attempt).
  const auto read_band = [&](Reader& reader, Task& t) -> Result<bool> {
    Attempt& a = *t.attempt;
    if (a.abandoned.load()) {
      std::lock_guard lock(m);
      return --a.left == 0;
    }
    const OcrBand& band = a.bands[t.band];
    const QImage& img = a.turned;
    const std::vector<uint8_t> px = a.bands.size() == 1 ? std::vector<uint8_t>()
                                                        : ocr_band_pixels(img.constBits(), img.width(), img.height(),
                                                                          static_cast<int>(img.bytesPerLine()), band);
    const auto recognise = [&](const std::string& order) -> Result<OcrPage> {
      TRY(tesseract::TessBaseAPI * api, reader.get(order));
      if (px.empty())
        api->SetImage(img.constBits(), img.width(), img.height(), 1, static_cast<int>(img.bytesPerLine()));
      else
        api->SetImage(px.data(), band.x1 - band.x0, band.y1 - band.y0, 1, band.x1 - band.x0);
      api->SetSourceResolution(a.page->dpi);
      BandStop band_stop{&stop_flag, &a.abandoned};
      tesseract::ETEXT_DESC monitor;
      monitor.cancel = &band_cancel_requested;
      monitor.cancel_this = &band_stop;
      OcrPage p;
      // (A page of one band is the whole image, whose band starts at (0, 0).)
      if (api->Recognize(&monitor) == 0 && !stop_flag.check() && !a.abandoned.load())
        p = collect(*api, band.x0, band.y0, a.rotation, a.page->img.width(), a.page->img.height(), 72.0 / a.page->dpi);
      api->Clear();
      return p;
    };
    const auto t0 = clock::now();
    TRY(OcrPage p, recognise(a.langs));
    spdlog::debug("ocr page {} band {} ({:.2f} of it, pixels {}..{} x {}..{}, turned {}): {} words, confidence {:.0f}, in {} ms",
                  a.page->number, t.band, band.work, band.x0, band.x1, band.y0, band.y1, a.rotation, p.words.size(),
                  p.mean_confidence, ms(clock::now() - t0));
    if (a.may_abandon && p.words.size() >= 20 && p.mean_confidence < kGarbageOcrConfidence) a.abandoned = true;
    std::lock_guard lock(m);
    a.results[t.band] = std::move(p);
    return --a.left == 0;
  };

  // Renders a page and queues its upright attempt (or finishes it: blank, or not renderable).
  const auto prepare_page = [&](Reader& reader, Poppler::Document& doc, size_t i) {
    auto job = std::make_shared<PageJob>();
    job->index = i;
    job->number = pages[i];
    {
      std::lock_guard lock(m);
      job->langs = doc_langs;
    }
    const std::string page_name = "page " + std::to_string(job->number);
    std::unique_ptr<Poppler::Page> pp = doc.page(job->number - 1);
    if (!pp) {
      job->warnings.push_back(page_name + ": could not be opened for OCR");
      finish_page(*job, {});
      return;
    }
    const QSizeF pts = pp->pageSizeF();
    job->dpi = ocr_render_dpi(pts.width(), pts.height(), options.dpi);
    if (job->dpi < options.dpi)
      job->warnings.push_back(page_name + ": too large to render at " + std::to_string(options.dpi) + " dpi, read at " +
                              std::to_string(job->dpi) + " dpi" +
                              (job->dpi < kMinUsefulOcrDpi ? " (small text may be lost)" : ""));
    const auto t0 = clock::now();
    job->img = render_gray(doc, *pp, job->number - 1, job->dpi);
    if (job->img.isNull()) {
      job->warnings.push_back(page_name + ": could not be rendered for OCR");
      finish_page(*job, {});
      return;
    }
    spdlog::debug("ocr page {}: {} dpi, rendered in {} ms", job->number, job->dpi, ms(clock::now() - t0));
    // A blank page (every pixel nearly the same) stays empty without asking Tesseract.
    if (nearly_blank(job->img)) {
      job->warnings.clear();  // an empty page is not a problem
      finish_page(*job, {});
      return;
    }
    // Upright first: most scanned pages are, and a confident reading needs no orientation check.
    start_attempt(reader, job, 0);
  };

  const auto work = [&] {
    // This worker's CPU time, in the debug log: on a busy machine the most any worker used is
    // the page's time on idle cores, which wall time cannot show.
    struct CpuLog {
      ~CpuLog() {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        spdlog::debug("ocr worker: {:.0f} ms of CPU", ts.tv_sec * 1e3 + ts.tv_nsec / 1e6);
      }
    } cpu_log;
    ReaderLease lease(dir);
    try {
      Reader& reader = *lease;
      std::unique_ptr<Poppler::Document> doc;
      bool warmed = false;
      for (;;) {
        Task task;
        size_t page = pages.size();
        {
          std::unique_lock lock(m);
          for (;;) {
            if (stop.load() || done == static_cast<int>(pages.size())) return;
            if (!tasks.empty()) {
              task = std::move(tasks.front());
              tasks.pop_front();
              break;
            }
            if (next_page < pages.size()) {
              page = next_page++;
              break;
            }
            // Other workers are rendering or finishing pages: load Tesseract meanwhile (once), then
            // wait for their bands (and poll Cancel).
            if (!warmed) {
              warmed = true;
              lock.unlock();
              if (auto api = reader.get(first_pass); !api.ok()) return fail(api.error());
              lock.lock();
              continue;
            }
            cv.wait_for(lock, std::chrono::milliseconds(50));
            lock.unlock();
            stop_flag.check();
            lock.lock();
          }
        }
        if (task.attempt) {
          auto last = read_band(reader, task);
          if (!last.ok()) return fail(last.error());
          if (*last && !stop_flag.check()) finish_attempt(reader, *task.attempt);
          continue;
        }
        if (!doc) {  // opened once this worker has a page to render
          doc = Poppler::Document::loadFromData(QByteArray::fromRawData(bytes.data(), static_cast<qsizetype>(bytes.size())),
                                                QByteArray::fromStdString(password), QByteArray::fromStdString(password));
          if (!doc || doc->isLocked())
            return fail(make_error(ErrorCode::kCorrupt, name + ": could not open the PDF again for OCR"));
          doc->setRenderHint(Poppler::Document::Antialiasing);
          doc->setRenderHint(Poppler::Document::TextAntialiasing);
        }
        prepare_page(reader, *doc, page);
      }
    } catch (const std::exception& e) {  // out of memory in Qt or Tesseract: this file fails, the batch goes on
      lease.drop();
      fail(make_error(ErrorCode::kIo, name + ": OCR failed: " + e.what()));
    }
  };
#ifdef _OPENMP
  // An OpenMP team rather than std::threads, of at least two (an active level) and no nested
  // parallelism: Tesseract's own OpenMP loops then run on their worker's thread. Left to
  // themselves they start a team of four per page whose barriers, on cores that are busy,
  // made one page take minutes instead of seconds (2.1 s of CPU became 15 s on 2 cores).
  omp_set_max_active_levels(1);
#pragma omp parallel num_threads(std::max(2, threads))
  if (omp_get_thread_num() < threads) work();
#else
  std::vector<std::thread> team;
  for (int t = 1; t < threads; ++t) team.emplace_back(work);
  work();
  for (auto& t : team) t.join();
#endif
  if (error) return *error;
  if (stop.load() || done < static_cast<int>(pages.size()))
    return make_error(ErrorCode::kCancelled,
                      name + ": OCR stopped after " + std::to_string(done) + " of " + std::to_string(pages.size()) + " pages");
  return out;
}

}  // namespace docdsa::ingest
