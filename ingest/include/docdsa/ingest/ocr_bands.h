// Splitting one scanned page into horizontal bands that can be read by OCR at the same time.
//
// Why: Tesseract reads a page on one thread (its own OpenMP loops are too fine-grained to help
// and, nested in our workers, made pages take minutes), so a one-page scan kept one core busy
// and the other idle. Cut between text lines, each band is a page of its own to Tesseract
// (layout analysis and recognition), and the bands' words joined in order are the page's.
//
// A cut must not change the reading order Tesseract would have found on the whole page: it
// goes only through rows without ink (along the page's skew, so slightly turned scans still
// have cuts), and never where the text lines just above and just below both have a wide
// vertical gap at the same place (columns: cutting there would read the top of both columns
// before the bottom of the first). A page without such cuts is one band.
#pragma once

#include <cstdint>
#include <vector>

namespace docdsa::ingest {

// A band of a page image: the rows between two cut lines y = top + slope * x and
// y = bottom + slope * x (pixels; slope is the page's skew, 0 for a straight scan).
struct OcrBand {
  double top = 0, bottom = 0;    // the cut lines at x = 0; the first band's top and the last band's bottom lie off the page
  double slope = 0;              // dy/dx of the cuts
  bool paragraph_after = false;  // the gap below is wider than the page's usual gap between lines
  int y0 = 0, y1 = 0;            // the image rows the band spans (y0 inclusive, y1 exclusive)
  uint8_t paper = 255;           // the page's paper grey, painted outside the cuts
  double work = 1;               // the band's estimated share of the page's OCR work (0..1)
};

// The page `gray` (8-bit, `width` x `height`, `stride` bytes per row; dark ink on light paper)
// cut into at most `pieces` bands of about equal ink, top to bottom (one band: no cut found, or
// pieces <= 1). Fast (a few milliseconds on a 300 dpi page): it works on a quarter-size ink map.
// `sideways` (optional; only looked for when pieces > 1): set when the text lines run down the
// page rather than across (a page turned 90 degrees, to be turned before it can be cut).
std::vector<OcrBand> find_ocr_bands(const uint8_t* gray, int width, int height, int stride, int pieces, bool* sideways = nullptr);

// The band's pixels as an image of its own (`width` x (y1 - y0), rows packed): the rows y0..y1
// with everything above its top cut and below its bottom cut painted the paper's grey.
std::vector<uint8_t> ocr_band_pixels(const uint8_t* gray, int width, int height, int stride, const OcrBand& band);

}  // namespace docdsa::ingest
