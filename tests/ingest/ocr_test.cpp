// OCR of scanned PDF pages (ingest/ocr.h) with the real Tesseract and Poppler: the scanned
// corpus, word error rate against a reference, French accents, turned pages, mixed PDFs, empty
// and huge pages, a damaged image, a password, languages, cancel, and no second OCR of a file
// the library has. Generated inputs come from test_pdf_writer.h at test time.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <QString>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "docdsa/ingest/document.h"
#include "docdsa/ingest/ocr.h"
#include "docdsa/storage/library.h"
#include "test_pdf_writer.h"
#include "scratch_dir.h"

namespace docdsa {
namespace {

namespace fs = std::filesystem;
const std::string kCorpus = DOCDSA_CORPUS;

std::string tmp(const std::string& name) {
  const fs::path dir = docdsa::test::scratch_dir() / ("docdsa-ocr-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string write_file(const std::string& name, const std::string& bytes) {
  const std::string p = tmp(name);
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Lower-case words split at anything but letters and digits (Unicode-aware: "l'Été," -> "l", "été").
std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> out;
  QString w;
  for (const QChar c : QString::fromStdString(text) + QLatin1Char(' ')) {
    if (c.isLetterOrNumber()) {
      w += c.toLower();
    } else if (!w.isEmpty()) {
      out.push_back(w.toStdString());
      w.clear();
    }
  }
  return out;
}

// Word error rate: word-level edit distance over the reference's length.
double wer(const std::vector<std::string>& ref, const std::vector<std::string>& hyp) {
  std::vector<size_t> prev(hyp.size() + 1), cur(hyp.size() + 1);
  for (size_t j = 0; j <= hyp.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= ref.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= hyp.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ref[i - 1] != hyp[j - 1])});
    std::swap(prev, cur);
  }
  return ref.empty() ? 0.0 : static_cast<double>(prev[hyp.size()]) / static_cast<double>(ref.size());
}

std::string all_text(const ingest::Document& d) {
  std::string t;
  for (const auto& s : d.segments) t += s.text + "\n";
  return t;
}

bool has_word(const ingest::Document& d, const std::string& word) {
  const auto ws = words_of(all_text(d));
  return std::find(ws.begin(), ws.end(), word) != ws.end();
}

ingest::LoadOptions ocr_options(const std::string& langs = "eng") {
  ingest::LoadOptions o;
  o.ocr.languages = langs;
  return o;
}

const std::vector<std::string> kEnglish = {
    "The lighthouse keeper climbed the stairs every evening", "to light the lamp before the ships came home.",
    "Storms rolled in from the north across the grey water,", "and the beam turned slowly through the rain.",
    "In the morning he wrote the weather in his logbook.",
};

const std::vector<std::string> kFrench = {
    "L'été dernier, le garçon a traversé la forêt à pied.",
    "Où est passée la clé du château ? Près de l'église.",
    "Les élèves préfèrent les leçons de français.",
    "Noël approche : on prépare déjà la bûche.",
};

// Every scanned PDF in the corpus ingests with real words; those that have a text layer
// (Vicksburg: an OCR layer already) are not read again by OCR.
TEST(Ocr, EveryScannedCorpusPdfIngestsWithRealWords) {
  for (const auto& e : fs::directory_iterator(kCorpus + "/pdf/scanned")) {
    if (e.path().extension() != ".pdf") continue;
    const std::string name = e.path().filename().string();
    auto d = ingest::load_document(e.path().string(), ocr_options());
    ASSERT_TRUE(d.ok()) << d.error().message;
    ASSERT_FALSE(d->segments.empty()) << name;
    const bool has_layer = name.find("Vicksburg") != std::string::npos;
    EXPECT_EQ(d->ocr_pages.empty(), has_layer) << name;
    if (has_layer) continue;
    // The Linn brochure, in four variants (one page, a skewed page, JBIG2, four turned pages).
    EXPECT_TRUE(has_word(*d, "sequencer") || has_word(*d, "linnsequencer")) << name << ":\n" << all_text(*d);
    EXPECT_TRUE(has_word(*d, "midi")) << name;
    EXPECT_GT(d->ocr_confidence, 80.0f) << name;
    for (const auto& p : d->ocr_pages) {
      EXPECT_GT(p.result.words.size(), 300u) << name << " page " << p.page;
      for (const auto& w : p.result.words) {  // boxes on the page (US letter, upright or landscape, in points)
        EXPECT_GE(w.x0, -1.0f);
        EXPECT_GE(w.y0, -1.0f);
        EXPECT_LT(w.x0, w.x1);
        EXPECT_LT(w.y0, w.y1);
        EXPECT_LE(std::max(w.x1, w.y1), 793.0f);
        EXPECT_LE(std::min(w.x1, w.y1), 613.0f);
      }
    }
    std::printf("%s: %zu OCR page(s), mean confidence %.1f\n", name.c_str(), d->ocr_pages.size(), d->ocr_confidence);
  }
}

// Word error rate of the Linn page against the reference text beside it (target <= 10%), with
// English only and with the default languages (English and every other installed one).
TEST(Ocr, LinnWordErrorRateAgainstTheReference) {
  for (const std::string langs : {"eng", ""}) {
    auto d = ingest::load_document(kCorpus + "/pdf/scanned/ocrmypdf__linn.pdf", ocr_options(langs));
    ASSERT_TRUE(d.ok()) << d.error().message;
    const double rate = wer(words_of(read_text(kCorpus + "/pdf/scanned/ocrmypdf__linn.txt")), words_of(all_text(*d)));
    std::printf("ocrmypdf__linn.pdf (%s): word error rate %.2f%% against ocrmypdf__linn.txt\n",
                langs.empty() ? ingest::default_ocr_languages().c_str() : langs.c_str(), 100.0 * rate);
    EXPECT_LE(rate, 0.10) << langs;
  }
}

// With more than one worker a one-page scan is cut into bands read at the same time (both cores
// busy), and reads as well as whole; with one worker it is read whole.
TEST(Ocr, AOnePageScanIsReadInBandsByEveryWorker) {
  const auto ref = words_of(read_text(kCorpus + "/pdf/scanned/ocrmypdf__linn.txt"));
  for (const int threads : {1, 2}) {
    auto o = ocr_options();
    o.ocr.threads = threads;
    auto d = ingest::load_document(kCorpus + "/pdf/scanned/ocrmypdf__linn.pdf", o);
    ASSERT_TRUE(d.ok()) << d.error().message;
    ASSERT_EQ(d->ocr_pages.size(), 1u);
    const auto& page = d->ocr_pages[0].result;
    if (threads == 1) {
      EXPECT_EQ(page.bands, 1);
    } else {
      EXPECT_GE(page.bands, 2);
    }
    EXPECT_GT(page.words.size(), 650u);
    const double rate = wer(ref, words_of(page.text));
    std::printf("linn on %d worker(s): %d band(s), word error rate %.2f%%\n", threads, page.bands, 100.0 * rate);
    EXPECT_LE(rate, 0.10) << threads;
  }
}

// The cardinal PDF has the page upright, then turned 90, 180 and 270 degrees: each reads.
TEST(Ocr, TurnedPagesAreRead) {
  auto d = ingest::load_document(kCorpus + "/pdf/scanned/ocrmypdf__cardinal.pdf", ocr_options());
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_EQ(d->ocr_pages.size(), 4u);
  const auto ref = words_of(read_text(kCorpus + "/pdf/scanned/ocrmypdf__linn.txt"));
  for (const auto& p : d->ocr_pages) {
    const double rate = wer(ref, words_of(p.result.text));
    std::printf("cardinal page %d: turned %d, word error rate %.2f%%\n", p.page, p.result.rotation, 100.0 * rate);
    EXPECT_LE(rate, 0.15) << "page " << p.page;
  }
}

// A generated scan fed in sideways (90 degrees) reads, and its boxes are on the page as shown.
TEST(Ocr, APageScannedSidewaysReads) {
  testpdf::Page p;
  p.image = testpdf::scan(kEnglish, 300, 90);
  p.width = 792, p.height = 612;  // the page is as turned as its image
  auto d = ingest::load_document(write_file("sideways.pdf", testpdf::write({p})), ocr_options());
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(has_word(*d, "lighthouse")) << all_text(*d);
  EXPECT_TRUE(has_word(*d, "logbook")) << all_text(*d);
  ASSERT_EQ(d->ocr_pages.size(), 1u);
  for (const auto& w : d->ocr_pages[0].result.words) {
    EXPECT_LE(w.x1, 793.0f);
    EXPECT_LE(w.y1, 613.0f);
    // Text turned 90 degrees clockwise runs down the page: words are taller than wide.
    if (w.text.size() >= 6) {
      EXPECT_GT(w.y1 - w.y0, w.x1 - w.x0) << w.text;
    }
  }
}

TEST(Ocr, FrenchDiacriticsSurvive) {
  const std::vector<std::string>& fr = kFrench;
  testpdf::Page p;
  p.image = testpdf::scan(fr);
  auto d = ingest::load_document(write_file("french.pdf", testpdf::write({p})), ocr_options("fra+eng"));
  ASSERT_TRUE(d.ok()) << d.error().message;
  const std::string text = all_text(*d);
  for (const char* w :
       {"été", "garçon", "traversé", "forêt", "où", "château", "église", "élèves", "préfèrent", "leçons", "français", "déjà"})
    EXPECT_TRUE(has_word(*d, w)) << w << " not in:\n" << text;
  const double rate = wer(words_of(fr[0] + " " + fr[1] + " " + fr[2] + " " + fr[3]), words_of(text));
  std::printf("French scan: word error rate %.2f%%\n", 100.0 * rate);
  EXPECT_LE(rate, 0.10);
}

// The default languages (English first, then French) keep the accents: a band that reads as
// French is read again with French first. English stays English (no second reading needed).
TEST(Ocr, FrenchDiacriticsSurviveWithTheDefaultLanguages) {
  const auto installed = ingest::installed_ocr_languages();
  if (std::find(installed.begin(), installed.end(), "fra") == installed.end())
    GTEST_SKIP() << "tesseract-ocr-fra is not installed";
  testpdf::Page p;
  p.image = testpdf::scan(kFrench);
  auto d = ingest::load_document(write_file("french-default.pdf", testpdf::write({p})), ocr_options(""));
  ASSERT_TRUE(d.ok()) << d.error().message;
  for (const char* w :
       {"été", "garçon", "traversé", "forêt", "où", "château", "église", "élèves", "préfèrent", "leçons", "français", "déjà"})
    EXPECT_TRUE(has_word(*d, w)) << w << " not in:\n" << all_text(*d);
}

TEST(Ocr, TextLanguageIsToldByItsCommonWords) {
  const std::vector<std::string> ef = {"eng", "fra"};
  EXPECT_EQ(ingest::ocr_text_language(kFrench[0] + " " + kFrench[1] + " " + kFrench[2] + " " + kFrench[3], ef), "fra");
  // As the English model reads it: accents gone, the small words the same.
  EXPECT_EQ(ingest::ocr_text_language("L'ete dernier, le garcon a traverse la foret a pied. Ou est passee la cle du "
                                      "chateau ? Pres de l'eglise. Les eleves preferent les lecons de francais.",
                                      ef),
            "fra");
  std::string english;
  for (const auto& l : kEnglish) english += l + " ";
  EXPECT_EQ(ingest::ocr_text_language(english, ef), "eng");
  EXPECT_EQ(ingest::ocr_text_language("The LinnSequencer", ef), "");  // too few words to tell
  EXPECT_EQ(ingest::ocr_text_language(english, {"eng"}), "eng");      // only the candidates count
  EXPECT_EQ(ingest::ocr_text_language(kFrench[0] + " " + kFrench[1], {"eng", "qqq"}), "");
  EXPECT_EQ(ingest::ocr_text_language("the and of le la les the and of le la les", ef), "");  // a mix says nothing
}

// Only the pages without a text layer are read by OCR; the others keep their text.
TEST(Ocr, MixedPdfReadsOnlyThePagesWithoutText) {
  testpdf::Page text, scan;
  text.lines = {"This page has a real text layer about harbours."};
  scan.image = testpdf::scan(kEnglish);
  auto d = ingest::load_document(write_file("mixed.pdf", testpdf::write({text, scan, text})), ocr_options());
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_EQ(d->ocr_pages.size(), 1u);
  EXPECT_EQ(d->ocr_pages[0].page, 2);
  ASSERT_EQ(d->segments.size(), 3u);
  EXPECT_NE(d->segments[0].text.find("harbours"), std::string::npos);
  EXPECT_NE(d->segments[1].text.find("lighthouse"), std::string::npos) << d->segments[1].text;
}

// A blank scanned page stays empty (no error, no words); only a PDF of nothing but blank
// pages is refused, with a message that says OCR found nothing.
TEST(Ocr, AnEmptyPageStaysEmpty) {
  testpdf::Page blank, scan;
  blank.image = QImage(1275, 1650, QImage::Format_Grayscale8);
  blank.image.fill(Qt::white);
  scan.image = testpdf::scan(kEnglish);
  auto d = ingest::load_document(write_file("blank-and-text.pdf", testpdf::write({blank, scan})), ocr_options());
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->pages_without_text, std::vector<int>{1});
  ASSERT_EQ(d->segments.size(), 1u);
  EXPECT_EQ(d->segments[0].page, 2);
  const std::string only_blank = write_file("blank.pdf", testpdf::write({blank}));
  auto none = ingest::load_document(only_blank, ocr_options());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("OCR found no words"), std::string::npos) << none.error().message;
  EXPECT_NE(none.error().message.find(only_blank), std::string::npos);
}

// A page of 20000 x 20000 pixels at 300 dpi is rendered within the pixel budget (a lower dpi,
// with a warning), not at 400 megapixels; its large text still reads.
TEST(Ocr, AHugePageIsRenderedWithinThePixelBudget) {
  EXPECT_EQ(ingest::ocr_render_dpi(612, 792, 300), 300);
  const int dpi = ingest::ocr_render_dpi(4800, 4800, 300);  // 20000 x 20000 px at 300 dpi
  EXPECT_LT(dpi, 300);
  EXPECT_LE(static_cast<int64_t>(4800 * dpi / 72) * (4800 * dpi / 72), ingest::kMaxOcrPixels);
  testpdf::Page p;
  p.width = p.height = 4800;
  p.image = testpdf::scan(kEnglish, 150);
  auto d = ingest::load_document(write_file("huge.pdf", testpdf::write({p})), ocr_options());
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_EQ(d->ocr_pages.size(), 1u);
  EXPECT_EQ(d->ocr_pages[0].result.dpi, dpi);
  EXPECT_TRUE(has_word(*d, "lighthouse")) << all_text(*d);
  bool warned = false;
  for (const auto& w : d->warnings) warned |= w.find("too large to render at 300 dpi") != std::string::npos;
  EXPECT_TRUE(warned);
}

// A damaged image stream: that page is empty (Poppler draws what it can), the next one reads.
TEST(Ocr, ADamagedImageStreamIsAnEmptyPageNotACrash) {
  testpdf::Page bad, good;
  bad.image = testpdf::scan(kEnglish);
  bad.damaged_image = true;
  good.image = bad.image;
  auto d = ingest::load_document(write_file("damaged-image.pdf", testpdf::write({bad, good})), ocr_options());
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->pages_without_text, std::vector<int>{1});
  EXPECT_TRUE(has_word(*d, "lighthouse"));
}

TEST(Ocr, APasswordProtectedScanNeedsThePassword) {
  testpdf::Page p;
  p.image = testpdf::scan(kEnglish);
  const std::string f = write_file("protected-scan.pdf", testpdf::write({p}, "sesame"));
  auto locked = ingest::load_document(f, ocr_options());
  ASSERT_FALSE(locked.ok());
  EXPECT_NE(locked.error().message.find("encrypted and needs a password"), std::string::npos) << locked.error().message;
  EXPECT_NE(locked.error().message.find(f), std::string::npos);
  auto o = ocr_options();
  o.password = "sesame";
  auto open = ingest::load_document(f, o);  // the OCR workers open it with the password too
  ASSERT_TRUE(open.ok()) << open.error().message;
  EXPECT_TRUE(has_word(*open, "lighthouse"));
}

TEST(Ocr, LanguagesAreCheckedAndAMissingOneNamesItsPackage) {
  EXPECT_EQ(ingest::ocr_language_package("fra"), "tesseract-ocr-fra");
  EXPECT_EQ(ingest::ocr_language_package("chi_sim"), "tesseract-ocr-chi-sim");
  const auto installed = ingest::installed_ocr_languages();
  EXPECT_NE(std::find(installed.begin(), installed.end(), "eng"), installed.end());
  EXPECT_EQ(std::find(installed.begin(), installed.end(), "osd"), installed.end());
  EXPECT_EQ(ingest::default_ocr_languages().rfind("eng", 0), 0u);  // English always, first
  auto ok = ingest::check_ocr_languages("eng+fra");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(*ok, "eng+fra");
  auto missing = ingest::check_ocr_languages("eng+qqq");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("tesseract-ocr-qqq"), std::string::npos) << missing.error().message;
  EXPECT_FALSE(ingest::check_ocr_languages("eng+").ok());
  EXPECT_FALSE(ingest::check_ocr_languages("../eng").ok());
  // Through ingest: the file is named too, and nothing is read.
  const std::string f = kCorpus + "/pdf/scanned/ocrmypdf__linn.pdf";
  auto d = ingest::load_document(f, ocr_options("eng+qqq"));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("tesseract-ocr-qqq"), std::string::npos);
}

// The language data is found from its files: a folder holding a .traineddata (here not even a
// real one, which TessBaseAPI::Init would refuse) is the one, without loading Tesseract.
TEST(Ocr, TessdataIsFoundFromItsFilesWithoutLoadingTesseract) {
  const fs::path empty = tmp("tessdata-empty"), fake = tmp("tessdata-fake");
  fs::create_directories(empty);
  fs::create_directories(fake);
  write_file("tessdata-fake/xyz.traineddata", "not a model");
  EXPECT_EQ(ingest::find_tessdata_dir({"/nonexistent/tessdata", empty.string(), fake.string()}), fake.string());
  EXPECT_EQ(ingest::find_tessdata_dir({empty.string()}), "");
  EXPECT_TRUE(fs::is_regular_file(fs::path(ingest::tessdata_dir()) / "eng.traineddata")) << ingest::tessdata_dir();
}

// --no-ocr: today's refusal of a PDF without a text layer.
TEST(Ocr, WithoutOcrAScanIsRefusedAsBefore) {
  auto o = ocr_options();
  o.ocr.enabled = false;
  auto d = ingest::load_document(kCorpus + "/pdf/scanned/ocrmypdf__linn.pdf", o);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("no text layer on any of its 1 pages"), std::string::npos) << d.error().message;
}

// Progress per OCR page; returning false cancels with kCancelled and no document.
TEST(Ocr, ProgressPerPageAndCancel) {
  std::vector<std::pair<int, int>> seen;
  auto o = ocr_options();
  o.on_ocr_page = [&](int done, int total) {
    seen.emplace_back(done, total);
    return true;
  };
  testpdf::Page scan;
  scan.image = testpdf::scan(kEnglish);
  const std::string f = write_file("three-scans.pdf", testpdf::write({scan, scan, scan}));
  auto d = ingest::load_document(f, o);
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_EQ(seen.size(), 3u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], std::make_pair(static_cast<int>(i) + 1, 3));
  int calls = 0;
  o.on_ocr_page = [&](int, int) { return ++calls < 1; };  // stop after the first page
  auto stopped = ingest::load_document(f, o);
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.error().code, ErrorCode::kCancelled);
  EXPECT_EQ(calls, 1);
}

// A file whose content the library has is not parsed again: no OCR on re-ingest.
TEST(Ocr, AKnownFileIsNotReadAgain) {
  auto o = ocr_options();
  int ocr_calls = 0;
  o.on_ocr_page = [&](int, int) { return ++ocr_calls, true; };
  std::string hash;
  o.known = [&](const std::string& h) { return hash = h, true; };
  auto d = ingest::load_document(kCorpus + "/pdf/scanned/ocrmypdf__linn.pdf", o);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->known);
  EXPECT_EQ(d->content_hash, hash);
  EXPECT_TRUE(d->segments.empty());
  EXPECT_EQ(ocr_calls, 0);
}

// The words and their boxes are stored with the document, replaced with it, found by page,
// and the document row carries the OCR page count and confidence.
TEST(OcrStorage, WordsAreStoredWithTheDocument) {
  const std::string p = tmp("ocr-words.sqlite");
  fs::remove(p);
  auto lib = storage::Library::open(p);
  ASSERT_TRUE(lib.ok()) << lib.error().message;
  storage::DocumentRow row;
  row.path = "/scan.pdf";
  row.kind = "pdf";
  row.content_hash = "aa11";
  row.ocr_pages = 2;
  row.ocr_confidence = 91.5;
  std::vector<storage::OcrWordRow> words = {
      {1, 10, 20, 30, 40, 95, "Été"}, {1, 35, 20, 60, 40, 80, "là"}, {3, 1, 2, 3, 4, 50, "x"}};
  auto st = (*lib)->store(row, {{1, -1, -1, "", "Été là"}, {3, -1, -1, "", "x"}}, {}, words);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto page1 = (*lib)->ocr_words(st->first, 1);
  ASSERT_TRUE(page1.ok());
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_EQ((*page1)[0].text, "Été");
  EXPECT_FLOAT_EQ((*page1)[1].x0, 35);
  EXPECT_FLOAT_EQ((*page1)[1].confidence, 80);
  EXPECT_EQ((*lib)->ocr_words(st->first)->size(), 3u);
  auto found = (*lib)->find(std::to_string(st->first));
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->ocr_pages, 2);
  EXPECT_DOUBLE_EQ(found->ocr_confidence, 91.5);
  EXPECT_EQ(*(*lib)->find_by_hash("aa11"), st->first);
  EXPECT_EQ(*(*lib)->find_by_hash("bb22"), 0);
  // A new version at the same path replaces the words too.
  row.content_hash = "bb22";
  auto again = (*lib)->store(row, {{1, -1, -1, "", "y"}}, {}, {{1, 0, 0, 1, 1, 70, "y"}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->second, storage::StoreOutcome::kReplaced);
  EXPECT_EQ((*lib)->ocr_words(st->first)->size(), 1u);
  ASSERT_TRUE((*lib)->remove(st->first).ok());
  EXPECT_TRUE((*lib)->ocr_words(st->first)->empty());
}

// Merging libraries (the shards of a batch) carries the OCR words and counts along.
TEST(OcrStorage, MergeCopiesTheOcrWords) {
  const std::string a = tmp("merge-in.sqlite"), out = tmp("merge-out.sqlite");
  fs::remove(a), fs::remove(out);
  {
    auto lib = storage::Library::open(a);
    ASSERT_TRUE(lib.ok());
    storage::DocumentRow row;
    row.path = "/scan.pdf";
    row.kind = "pdf";
    row.content_hash = "dd44";
    row.ocr_pages = 1;
    row.ocr_confidence = 88;
    ASSERT_TRUE((*lib)->store(row, {{1, -1, -1, "", "Été"}}, {}, {{1, 1, 2, 3, 4, 88, "Été"}}).ok());
  }
  auto lib = storage::Library::open(out);
  ASSERT_TRUE(lib.ok());
  ASSERT_TRUE((*lib)->merge({a}).ok());
  auto docs = (*lib)->list();
  ASSERT_TRUE(docs.ok());
  ASSERT_EQ(docs->size(), 1u);
  EXPECT_EQ((*docs)[0].ocr_pages, 1);
  EXPECT_DOUBLE_EQ((*docs)[0].ocr_confidence, 88);
  auto words = (*lib)->ocr_words((*docs)[0].id);
  ASSERT_TRUE(words.ok());
  ASSERT_EQ(words->size(), 1u);
  EXPECT_EQ((*words)[0].text, "Été");
  ASSERT_TRUE((*lib)->merge({a}).ok());  // again: nothing doubled
  EXPECT_EQ((*lib)->ocr_words((*docs)[0].id)->size(), 1u);
}

// A library written before OCR (schema v2) opens as v3 with every document kept.
TEST(OcrStorage, AVersion2LibraryMigratesKeepingItsDocuments) {
  const std::string p = tmp("v2.sqlite");
  fs::remove(p);
  {
    auto lib = storage::Library::open(p);
    ASSERT_TRUE(lib.ok());
    storage::DocumentRow row;
    row.path = "/old.txt";
    row.kind = "txt";
    row.content_hash = "cc33";
    ASSERT_TRUE((*lib)->store(row, {{0, -1, -1, "", "old text"}}, {{0, 2, 0, 0, -1, -1, 0, 8, "", "old text"}}).ok());
    // Back to what a v2 library looks like: no OCR table or columns.
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec((*lib)->handle(),
                           "DROP TABLE ocr_words; ALTER TABLE documents DROP COLUMN ocr_pages; "
                           "ALTER TABLE documents DROP COLUMN ocr_confidence; PRAGMA user_version = 2;",
                           nullptr, nullptr, &err),
              SQLITE_OK)
        << (err ? err : "");
  }
  auto lib = storage::Library::open(p);
  ASSERT_TRUE(lib.ok()) << lib.error().message;
  EXPECT_EQ((*lib)->schema_version(), 3);
  auto docs = (*lib)->list();
  ASSERT_TRUE(docs.ok());
  ASSERT_EQ(docs->size(), 1u);
  EXPECT_EQ((*docs)[0].path, "/old.txt");
  EXPECT_EQ((*docs)[0].ocr_pages, 0);
  EXPECT_EQ((*lib)->segments((*docs)[0].id)->at(0).text, "old text");
  EXPECT_EQ((*lib)->chunks((*docs)[0].id)->size(), 1u);
  EXPECT_TRUE((*lib)->integrity_check().ok());
}

}  // namespace
}  // namespace docdsa
