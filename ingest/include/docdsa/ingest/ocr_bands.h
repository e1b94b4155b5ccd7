// Splitting one scanned page into bands that can be read by OCR at the same time.
//
// Why: Tesseract reads a page on one thread (its own OpenMP loops are too fine-grained to help
// and, nested in our workers, made pages take minutes), so a one-page scan kept one core busy
// and the other idle. Cut between text lines, each band is a page of its own to Tesseract
// (layout analysis and recognition), and the bands' words joined in order are the page's.
//
// A cut must not change the reading order Tesseract would have found on the whole page: it
// goes only through rows without ink (along the page's skew, so slightly turned scans still
// have cuts), and never across columns (where the text lines just above and just below both
// have a wide vertical gap at the same place: cutting there would read the top of both columns
// before the bottom of the first). A part of the page in columns is one band, or, when it holds
// more than a band's share of the page, read column by column: each column is then cut on its
// own, and its bands come after those of the columns to its left.
#pragma once

#include <cstdint>
#include <vector>

namespace docdsa::ingest {

// A band of a page image: the pixels between two cut lines y = top + slope * x and
// y = bottom + slope * x, and, in a column, between its edges x + slope * y = left and = right
// (pixels; slope is the page's skew, 0 for a straight scan).
struct OcrBand {
  double top = 0, bottom = 0;       // the cut lines at x = 0; the first band's top and the last band's bottom lie off the page
  double left = -1e9, right = 1e9;  // a column's edges at y = 0; off the page for a band across it
  double slope = 0;                 // dy/dx of the cuts
  bool paragraph_after = false;     // the gap below is wider than the page's usual gap between lines, or a column ends
  int y0 = 0, y1 = 0;               // the image rows the band spans (y0 inclusive, y1 exclusive)
  int x0 = 0, x1 = 0;               // the image columns it spans
  uint8_t paper = 255;              // the page's paper grey, painted outside the cuts
  double work = 1;                  // the band's estimated share of the page's OCR work (0..1)
};

// The page `gray` (8-bit, `width` x `height`, `stride` bytes per row; dark ink on light paper)
// cut into bands of about equal ink, in reading order: about `pieces` of them, more where a part
// read column by column must be cut at its own edges and its columns' ends (one band: no cut
// found, or pieces <= 1). Fast (a few milliseconds on a 300 dpi page): it works on a quarter-size ink map.
// `sideways` (optional; only looked for when pieces > 1): set when the text lines run down the
// page rather than across (a page turned 90 degrees, to be turned before it can be cut).
std::vector<OcrBand> find_ocr_bands(const uint8_t* gray, int width, int height, int stride, int pieces, bool* sideways = nullptr);

// The band's pixels as an image of its own ((x1 - x0) x (y1 - y0), rows packed): the rows y0..y1
// and columns x0..x1, with everything outside its cuts and edges painted the paper's grey.
std::vector<uint8_t> ocr_band_pixels(const uint8_t* gray, int width, int height, int stride, const OcrBand& band);

}  // namespace docdsa::ingest
