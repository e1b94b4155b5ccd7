#include "docdsa/ingest/ocr.h"

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
#include <QTransform>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
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

std::string tessdata_dir() {
  static const std::string dir = [] {
    // Tesseract 5 reads $TESSDATA_PREFIX as the tessdata folder itself.
    if (const char* p = std::getenv("TESSDATA_PREFIX"); p && *p) return std::string(p);
    // Else its compiled-in default, which only an initialised API reports; "osd" or "eng" will do.
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

bool cancel_requested(void* flag, int) {
  return static_cast<const StopFlag*>(flag)->check();
}

// One page's words from an API that has recognised an image of `w` x `h` pixels that was the
// page turned clockwise by `rotation` degrees; boxes go back to the unturned page, in points.
OcrPage collect(tesseract::TessBaseAPI& api, int rotation, int w, int h, double px_to_pt) {
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
    const auto [x0, y0] = back(l, t);
    const auto [x1, y1] = back(r, b);
    OcrWord ow;
    ow.x0 = static_cast<float>(std::min(x0, x1) * px_to_pt);
    ow.y0 = static_cast<float>(std::min(y0, y1) * px_to_pt);
    ow.x1 = static_cast<float>(std::max(x0, x1) * px_to_pt);
    ow.y1 = static_cast<float>(std::max(y0, y1) * px_to_pt);
    ow.confidence = std::clamp(it->Confidence(tesseract::RIL_WORD), 0.0f, 100.0f);
    conf_sum += ow.confidence;
    ow.text = std::move(word);
    page.words.push_back(std::move(ow));
  } while (it->Next(tesseract::RIL_WORD));
  if (!page.words.empty()) page.mean_confidence = static_cast<float>(conf_sum / static_cast<double>(page.words.size()));
  return page;
}

// A worker's Tesseract: the recognition API and, when osd.traineddata is installed, an
// orientation-detection API.
struct Reader {
  tesseract::TessBaseAPI ocr;
  std::unique_ptr<tesseract::TessBaseAPI> osd;
};

Status init_reader(Reader* r, const std::string& dir, const std::string& langs, bool with_osd) {
  r->ocr.SetVariable("debug_file", "/dev/null");  // Tesseract's chatter (resolution guesses, …) stays off stderr
  if (r->ocr.Init(dir.c_str(), langs.c_str(), tesseract::OEM_LSTM_ONLY) != 0)
    return make_error(ErrorCode::kNotFound, "Tesseract could not load the OCR languages '" + langs + "' from " + dir);
  r->ocr.SetPageSegMode(tesseract::PSM_AUTO);
  // No second, inverted reading of lines it is unsure of (white on black is rare in scans):
  // a large share of the time on a poor page, little gain.
  r->ocr.SetVariable("tessedit_do_invert", "0");
  if (with_osd) {
    r->osd = std::make_unique<tesseract::TessBaseAPI>();
    r->osd->SetVariable("debug_file", "/dev/null");
    if (r->osd->Init(dir.c_str(), "osd", tesseract::OEM_TESSERACT_ONLY) != 0)
      r->osd.reset();
    else
      r->osd->SetPageSegMode(tesseract::PSM_OSD_ONLY);
  }
  return {};
}

// Recognises `img` (grayscale) turned clockwise by `rotation`.
OcrPage recognise(Reader& r, const QImage& img, int rotation, int dpi, const StopFlag* stop) {
  const QImage turned = rotation ? img.transformed(QTransform().rotate(rotation)) : img;
  r.ocr.SetImage(turned.constBits(), turned.width(), turned.height(), 1, static_cast<int>(turned.bytesPerLine()));
  r.ocr.SetSourceResolution(dpi);
  tesseract::ETEXT_DESC monitor;
  monitor.cancel = &cancel_requested;
  monitor.cancel_this = const_cast<StopFlag*>(stop);
  if (r.ocr.Recognize(&monitor) != 0 || stop->check()) {
    r.ocr.Clear();
    return {};
  }
  OcrPage p = collect(r.ocr, rotation, img.width(), img.height(), 72.0 / dpi);
  r.ocr.Clear();
  p.rotation = rotation;
  return p;
}

// Words found times their mean confidence: how well a reading went, to compare turns.
double score(const OcrPage& p) {
  return p.words.empty() ? 0.0 : p.mean_confidence * static_cast<double>(p.words.size());
}

OcrPage read_page(Reader& r, Poppler::Document& doc, int number, int want_dpi, const StopFlag* stop) {
  OcrPage page;
  std::unique_ptr<Poppler::Page> pp = doc.page(number - 1);
  if (!pp) {
    page.warnings.push_back("page " + std::to_string(number) + ": could not be opened for OCR");
    return page;
  }
  const QSizeF pts = pp->pageSizeF();
  const int dpi = ocr_render_dpi(pts.width(), pts.height(), want_dpi);
  page.dpi = dpi;
  if (dpi < want_dpi)
    page.warnings.push_back("page " + std::to_string(number) + ": too large to render at " + std::to_string(want_dpi) +
                            " dpi, read at " + std::to_string(dpi) + " dpi" +
                            (dpi < kMinUsefulOcrDpi ? " (small text may be lost)" : ""));
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  QImage img = pp->renderToImage(dpi, dpi);
  if (img.isNull()) {
    page.warnings.push_back("page " + std::to_string(number) + ": could not be rendered for OCR");
    return page;
  }
  img = img.convertToFormat(QImage::Format_Grayscale8);
  // A blank page (every pixel nearly the same) stays empty without asking Tesseract.
  {
    int lo = 255, hi = 0;
    for (int y = 0; y < img.height() && hi - lo < 32; y += 4) {
      const uchar* row = img.constScanLine(y);
      for (int x = 0; x < img.width(); x += 4) lo = std::min<int>(lo, row[x]), hi = std::max<int>(hi, row[x]);
    }
    if (hi - lo < 32) {
      page.warnings.clear();
      return page;
    }
  }
  // Upright first: most scanned pages are, and a confident reading needs no orientation check.
  const auto t1 = clock::now();
  OcrPage best = recognise(r, img, 0, dpi, stop);
  const auto good = [](const OcrPage& p) { return p.words.size() >= 10 && p.mean_confidence >= kSureOcrConfidence; };
  if (!good(best) && !stop->check()) {
    // Turned 90/180/270 degrees? Tesseract's orientation detection (osd.traineddata) says how
    // far; without it (or when it is unsure) each turn is read and the best reading kept.
    std::vector<int> turns{90, 180, 270};
    if (r.osd) {
      // From a half-size image: as sure on text of normal size, and faster.
      const QImage small =
          dpi >= 200 ? img.scaled(img.width() / 2, img.height() / 2, Qt::IgnoreAspectRatio, Qt::SmoothTransformation) : img;
      r.osd->SetImage(small.constBits(), small.width(), small.height(), 1, static_cast<int>(small.bytesPerLine()));
      r.osd->SetSourceResolution(dpi * small.width() / img.width());
      int deg = 0;
      float conf = 0, script_conf = 0;
      const char* script = nullptr;
      // orient_deg: how far the image is turned (clockwise); turning it back reads it upright.
      if (r.osd->DetectOrientationScript(&deg, &conf, &script, &script_conf) && conf >= 2.0f) turns = {(360 - deg) % 360};
      r.osd->Clear();
    }
    for (int turn : turns) {
      if (turn == 0 || stop->check()) continue;
      OcrPage p = recognise(r, img, turn, dpi, stop);
      if (score(p) > 1.25 * score(best)) best = std::move(p);
      if (good(best)) break;
    }
  }
  const auto ms = [](clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  spdlog::debug("ocr page {}: {} dpi, render {} ms, recognition {} ms, {} words, turned {}", number, dpi, ms(t1 - t0),
                ms(clock::now() - t1), best.words.size(), best.rotation);
  best.dpi = dpi;
  best.warnings.insert(best.warnings.begin(), page.warnings.begin(), page.warnings.end());
  if (best.rotation)
    best.warnings.push_back("page " + std::to_string(number) + ": turned " + std::to_string(best.rotation) + "° to read it");
  if (!best.words.empty() && best.mean_confidence < kLowOcrConfidence)
    best.warnings.push_back("page " + std::to_string(number) + ": low OCR confidence (" +
                            std::to_string(static_cast<int>(std::lround(best.mean_confidence))) + "%)");
  return best;
}

}  // namespace

Result<std::vector<OcrPage>> ocr_pdf_pages(const std::string& bytes, const std::string& name, const std::string& password,
                                           const std::vector<int>& pages, const OcrOptions& options, const OcrProgress& on_page) {
  std::vector<OcrPage> out(pages.size());
  if (pages.empty()) return out;
  TRY(const std::string langs, check_ocr_languages(options.languages));
  const std::string dir = tessdata_dir();
  std::error_code ec;
  const bool with_osd = fs::is_regular_file(fs::path(dir) / "osd.traineddata", ec);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::clamp(options.threads > 0 ? options.threads : cores, 1, static_cast<int>(pages.size()));
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  const StopFlag stop_flag{&stop, &options.cancelled};
  std::mutex m;  // guards done, error and on_page
  int done = 0;
  std::optional<Error> error;
  const auto work = [&] {
    try {
      Reader reader;
      std::unique_ptr<Poppler::Document> doc;
      for (size_t i; !stop_flag.check() && (i = next.fetch_add(1)) < pages.size();) {
        if (!doc) {  // opened once this worker has a page (a spare OpenMP thread may get none)
          doc = Poppler::Document::loadFromData(QByteArray::fromRawData(bytes.data(), static_cast<qsizetype>(bytes.size())),
                                                QByteArray::fromStdString(password), QByteArray::fromStdString(password));
          Status st = !doc || doc->isLocked()
                          ? Status(make_error(ErrorCode::kCorrupt, name + ": could not open the PDF again for OCR"))
                          : init_reader(&reader, dir, langs, with_osd);
          if (!st.ok()) {
            std::lock_guard lock(m);
            if (!error) error = st.error();
            stop = true;
            return;
          }
          doc->setRenderHint(Poppler::Document::Antialiasing);
          doc->setRenderHint(Poppler::Document::TextAntialiasing);
        }
        OcrPage p = read_page(reader, *doc, pages[i], options.dpi, &stop_flag);
        std::lock_guard lock(m);
        if (stop.load()) break;
        out[i] = std::move(p);
        ++done;
        if (on_page && !on_page(done, static_cast<int>(pages.size()))) stop = true;
      }
    } catch (const std::exception& e) {  // out of memory in Qt or Tesseract: this file fails, the batch goes on
      std::lock_guard lock(m);
      if (!error) error = make_error(ErrorCode::kIo, name + ": OCR failed: " + e.what());
      stop = true;
    }
  };
#ifdef _OPENMP
  // An OpenMP team rather than std::threads, of at least two (an active level) and no nested
  // parallelism: Tesseract's own OpenMP loops then run on their worker's thread. Left to
  // themselves they start a team of four per page whose barriers, on cores that are busy,
  // made one page take minutes instead of seconds.
  omp_set_max_active_levels(1);
#pragma omp parallel num_threads(std::max(2, threads))
  work();
#else
  std::vector<std::thread> team;
  for (int t = 1; t < threads; ++t) team.emplace_back(work);
  work();
  for (auto& t : team) t.join();
#endif
  if (error) return *error;
  if (stop.load())
    return make_error(ErrorCode::kCancelled,
                      name + ": OCR stopped after " + std::to_string(done) + " of " + std::to_string(pages.size()) + " pages");
  return out;
}

}  // namespace docdsa::ingest
