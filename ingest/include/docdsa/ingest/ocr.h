// OCR of PDF pages that have no usable text layer: each page is rendered with Poppler (300 dpi
// by default, less when the page would exceed kMaxOcrPixels) and read in process with the
// Tesseract C++ API (TessBaseAPI). Pages, and bands of a page (ocr_bands.h), are read in
// parallel, one Poppler document and one TessBaseAPI per worker thread (neither is thread-safe).
// A page turned by 90/180/270 degrees is detected (Tesseract OSD with osd.traineddata, else by
// trying the turns) and read upright; small skew is Tesseract's own line finding. Word boxes are
// kept in page points (the units of Poppler's text boxes), so a scanned page can be marked like
// a text page.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "docdsa/engine/result.h"

namespace docdsa::ingest {

struct OcrWord {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // page points, origin top left (as Poppler's TextBox)
  float confidence = 0;                  // 0..100
  std::string text;                      // UTF-8
};

struct OcrPage {
  std::string text;  // words in reading order: ' ' between words, '\n' between lines, blank line between paragraphs
  std::vector<OcrWord> words;
  float mean_confidence = -1;  // over the words; -1 when none
  int dpi = 0;                 // the resolution it was rendered at
  int rotation = 0;            // clockwise degrees the page was turned to read it (0, 90, 180, 270)
  int bands = 0;               // the pieces it was cut into and read at the same time (ocr_bands.h); 0: not read
  std::vector<std::string> warnings;
};

struct OcrOptions {
  bool enabled = true;    // false: pages without a text layer stay without text (--no-ocr)
  std::string languages;  // Tesseract languages joined by '+', e.g. "eng+fra"; empty: default_ocr_languages()
  int dpi = 300;          // render resolution (clamped by kMaxOcrPixels)
  int threads = 0;        // worker threads; 0: all cores
  // Polled while a page is read (from the worker threads; must be thread-safe): true stops
  // every worker within its page, with kCancelled. Ctrl+C, the GUI's Cancel.
  std::function<bool()> cancelled;
};

// The render budget per page: a page of 20000 x 20000 pixels is rendered at a lower dpi instead
// of taking gigabytes (40 Mpx: a US letter page at 300 dpi is 8.4 Mpx, A3 at 300 dpi 17 Mpx).
inline constexpr int64_t kMaxOcrPixels = 40'000'000;
// Below this a page is still read, with a warning that its text may be too small.
inline constexpr int kMinUsefulOcrDpi = 100;
// A page whose mean word confidence is below this gets a low-confidence warning.
inline constexpr float kLowOcrConfidence = 60.0f;
// A band read upright this unsure (of at least 20 words) is text upside down, or turned: the
// rest of the upright reading is given up for orientation detection.
inline constexpr float kGarbageOcrConfidence = 50.0f;
// An upright reading at least this sure (and of at least 10 words) is not checked for a turned page.
inline constexpr float kSureOcrConfidence = 75.0f;

// With more than one worker, each page is cut into up to this many bands between its text lines
// (ocr_bands.h), so that even a one-page scan keeps every core busy. Fixed, not the number of
// cores: a page reads the same everywhere.
inline constexpr int kOcrBandsPerPage = 8;

// The dpi a page of `width_pt` x `height_pt` points is rendered at: `dpi`, or less so that the
// image stays within kMaxOcrPixels (at least 1).
int ocr_render_dpi(double width_pt, double height_pt, int dpi);

// Where Tesseract finds its language data, and the languages installed there (without "osd",
// which is orientation detection, not a language), sorted.
// Found from the files, without loading Tesseract (TessBaseAPI::Init loads a model: slow on a UI
// thread): $TESSDATA_PREFIX, else the first of the packages' folders that holds a .traineddata.
std::string tessdata_dir();
// The first of `candidates` that holds a .traineddata file; "" when none does.
std::string find_tessdata_dir(const std::vector<std::string>& candidates);
std::vector<std::string> installed_ocr_languages();
// English plus every other installed language, e.g. "eng+fra" ("eng" when nothing else is).
std::string default_ocr_languages();
// The Debian package that provides a language's data: "fra" -> "tesseract-ocr-fra",
// "chi_sim" -> "tesseract-ocr-chi-sim".
std::string ocr_language_package(const std::string& lang);
// `languages` (e.g. "eng+fra") normalised, or kNotFound naming each missing language and the
// package to install; kInvalidArgument for a malformed list.
Result<std::string> check_ocr_languages(const std::string& languages);

// Which of `candidates` (Tesseract codes, e.g. {"eng", "fra"}) `text` is written in, judged by
// its commonest short words; "" when it cannot tell (too few of them, a mix, or languages it
// has no words for). A page that reads as another language than the first listed is read again
// with that language first: Tesseract tries the first language's model first, and the English
// model reads "garçon" as "garcon" confidently enough that it never asks the French one. When
// every listed language can be told this way, the first reading uses the first language alone
// (English pages: a fifth less time than "eng+fra", the same words), and a French page is read
// again as "fra+eng"; the pages of the file that start after it start as "fra+eng" (a French
// file's pages are read once each), until one reads as English again.
std::string ocr_text_language(const std::string& text, const std::vector<std::string>& candidates);

// Reads the pages `pages` (1-based) of the PDF in `bytes` (opened with `password`), in parallel.
// `on_page(done, total)` is called after each page (from a worker thread, one call at a time);
// returning false stops every worker within its page and the call returns kCancelled.
// Results are in the order of `pages`. `name` names the file in errors.
using OcrProgress = std::function<bool(int done, int total)>;
Result<std::vector<OcrPage>> ocr_pdf_pages(const std::string& bytes, const std::string& name, const std::string& password,
                                           const std::vector<int>& pages, const OcrOptions& options,
                                           const OcrProgress& on_page = {});

}  // namespace docdsa::ingest
