// Cutting a scanned page into bands read at the same time (ingest/ocr_bands.h), on drawn pages:
// words are black boxes (the cutter sees only ink), so each layout is exact and needs no font.
#include <gtest/gtest.h>

#include <QImage>
#include <QPainter>
#include <QTransform>
#include <cmath>
#include <vector>

#include "docdsa/ingest/ocr_bands.h"

namespace docdsa {
namespace {

constexpr int kWidth = 2550, kHeight = 3300;  // US letter at 300 dpi

// A line of "words" (boxes 40..160 px wide, 25 px apart) from x0 to about x1, 30 px tall.
void draw_line(QPainter& p, int x0, int x1, int y, unsigned seed) {
  for (int x = x0; x < x1 - 40;) {
    seed = seed * 1103515245u + 12345u;
    const int w = std::min(40 + static_cast<int>(seed >> 16) % 120, x1 - x);
    p.fillRect(x, y, w, 30, Qt::black);
    x += w + 25;
  }
}

struct Drawn {
  QImage img;
  int columns_top = 0, columns_bottom = 0;  // the two-column part, when there is one
};

// A page: `above` full-width lines, then `column_lines` lines in two columns (100 px gutter,
// lines side by side), then `below` full-width lines; 50 px from line to line, a 50 px gap
// between the parts. Turned by `degrees` about the page's centre when not 0.
Drawn draw_page(int above, int column_lines, int below, double degrees = 0) {
  QImage rgb(kWidth, kHeight, QImage::Format_RGB32);
  rgb.fill(Qt::white);
  Drawn d;
  {
    QPainter p(&rgb);
    if (degrees != 0) {
      p.translate(kWidth / 2.0, kHeight / 2.0);
      p.rotate(degrees);
      p.translate(-kWidth / 2.0, -kHeight / 2.0);
    }
    int y = 300;
    unsigned seed = 1;
    for (int i = 0; i < above; ++i, y += 50) draw_line(p, 300, 2250, y, seed++);
    y += 50;
    d.columns_top = y;
    for (int i = 0; i < column_lines; ++i, y += 50) {
      draw_line(p, 300, 1225, y, seed++);
      draw_line(p, 1325, 2250, y, seed++);
    }
    d.columns_bottom = y - 20;
    y += 50;
    for (int i = 0; i < below; ++i, y += 50) draw_line(p, 300, 2250, y, seed++);
  }
  d.img = rgb.convertToFormat(QImage::Format_Grayscale8);
  return d;
}

std::vector<ingest::OcrBand> bands_of(const QImage& img, int pieces = 8, bool* sideways = nullptr) {
  return ingest::find_ocr_bands(img.constBits(), img.width(), img.height(), static_cast<int>(img.bytesPerLine()), pieces,
                                sideways);
}

// No ink on a cut: every pixel on the line y = cut + slope * x is paper.
void expect_cut_through_paper(const QImage& img, double cut, double slope) {
  int inked = 0;
  for (int x = 0; x < img.width(); ++x) {
    const int y = static_cast<int>(std::lround(cut + slope * x));
    if (y >= 0 && y < img.height() && img.constScanLine(y)[x] < 128) ++inked;
  }
  EXPECT_EQ(inked, 0) << "cut at y = " << cut << " + " << slope << " x";
}

// Bands follow one another, top to bottom, and their pixels keep the page's ink between the cuts.
void expect_bands_tile_the_page(const QImage& img, const std::vector<ingest::OcrBand>& bands) {
  ASSERT_FALSE(bands.empty());
  EXPECT_EQ(bands.front().y0, 0);
  EXPECT_EQ(bands.back().y1, img.height());
  double work = 0;
  for (size_t i = 0; i < bands.size(); ++i) {
    work += bands[i].work;
    if (i > 0) {
      EXPECT_EQ(bands[i].top, bands[i - 1].bottom);
      EXPECT_LE(bands[i].y0, bands[i - 1].y1);  // no row left out
    }
    const auto px =
        ingest::ocr_band_pixels(img.constBits(), img.width(), img.height(), static_cast<int>(img.bytesPerLine()), bands[i]);
    EXPECT_EQ(px.size(), static_cast<size_t>(img.width()) * (bands[i].y1 - bands[i].y0));
  }
  EXPECT_NEAR(work, 1.0, 1e-6);
}

TEST(OcrBands, ASingleColumnPageIsCutBetweenItsLines) {
  const Drawn d = draw_page(50, 0, 0);
  const auto bands = bands_of(d.img);
  ASSERT_GE(bands.size(), 4u);
  expect_bands_tile_the_page(d.img, bands);
  for (size_t i = 0; i + 1 < bands.size(); ++i) {
    EXPECT_NEAR(bands[i].slope, 0.0, 1e-9);
    expect_cut_through_paper(d.img, bands[i].bottom, bands[i].slope);
    EXPECT_GT(bands[i].work, 0.05);  // about equal shares, none tiny
  }
  // One piece asked for, or one worker: the page whole.
  const auto one = bands_of(d.img, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].y0, 0);
  EXPECT_EQ(one[0].y1, kHeight);
}

// A cut inside the two-column part would read the top of both columns before the rest of the
// first: the cuts fall above or below it, never across.
TEST(OcrBands, TwoColumnsAreNotCutAcross) {
  for (const auto& [above, below] : {std::pair{8, 8}, std::pair{0, 10}, std::pair{10, 0}, std::pair{0, 0}}) {
    const Drawn d = draw_page(above, 40, below);
    const auto bands = bands_of(d.img);
    expect_bands_tile_the_page(d.img, bands);
    for (size_t i = 0; i + 1 < bands.size(); ++i) {
      const double cut = bands[i].bottom;
      EXPECT_TRUE(cut <= d.columns_top || cut >= d.columns_bottom)
          << "cut at " << cut << " inside the columns [" << d.columns_top << ", " << d.columns_bottom << ") with " << above
          << " lines above and " << below << " below";
      expect_cut_through_paper(d.img, cut, bands[i].slope);
    }
    if (above + below >= 16) {
      EXPECT_GE(bands.size(), 2u) << "the full-width parts can be cut off";
    }
  }
}

// The right column ends first: the left column's last lines, alone on their rows, are still
// part of the columns (no cut until a full-width line).
TEST(OcrBands, AColumnThatEndsFirstIsNotCutOffTheOther) {
  QImage rgb(kWidth, kHeight, QImage::Format_RGB32);
  rgb.fill(Qt::white);
  {
    QPainter p(&rgb);
    unsigned seed = 7;
    for (int i = 0; i < 50; ++i) {
      draw_line(p, 300, 1225, 300 + 50 * i, seed++);
      if (i < 20) draw_line(p, 1325, 2250, 300 + 50 * i, seed++);
    }
  }
  const QImage img = rgb.convertToFormat(QImage::Format_Grayscale8);
  const auto bands = bands_of(img);
  expect_bands_tile_the_page(img, bands);
  EXPECT_EQ(bands.size(), 1u) << "cut at " << bands[0].bottom;
}

// A page scanned 1.5 degrees askew is cut along its lines, through paper only.
TEST(OcrBands, ASkewedPageIsCutAlongItsLines) {
  const Drawn d = draw_page(50, 0, 0, 1.5);
  const auto bands = bands_of(d.img);
  ASSERT_GE(bands.size(), 3u);
  expect_bands_tile_the_page(d.img, bands);
  for (size_t i = 0; i + 1 < bands.size(); ++i) {
    EXPECT_NEAR(std::atan(bands[i].slope) * 180 / M_PI, 1.5, 0.2);
    expect_cut_through_paper(d.img, bands[i].bottom, bands[i].slope);
  }
  // Painted outside the cuts: the band's own rows only, the neighbours' ink gone.
  const auto& b = bands[1];
  const auto px =
      ingest::ocr_band_pixels(d.img.constBits(), d.img.width(), d.img.height(), static_cast<int>(d.img.bytesPerLine()), b);
  for (int y = b.y0; y < b.y1; y += 3)
    for (int x = 0; x < d.img.width(); x += 5) {
      const bool inside = y >= b.top + b.slope * x && y < b.bottom + b.slope * x;
      const uint8_t v = px[static_cast<size_t>(y - b.y0) * d.img.width() + x];
      if (inside)
        ASSERT_EQ(v, d.img.constScanLine(y)[x]) << x << "," << y;
      else
        ASSERT_EQ(v, b.paper) << x << "," << y;
    }
}

// Lines that run down the page (a page turned 90 degrees) are noticed, so the page is turned
// before it is cut; an upright page is not taken for one.
TEST(OcrBands, ASidewaysPageIsNoticed) {
  const Drawn d = draw_page(50, 0, 0);
  bool sideways = true;
  bands_of(d.img, 8, &sideways);
  EXPECT_FALSE(sideways);
  const QImage turned = d.img.transformed(QTransform().rotate(90));
  const auto bands = bands_of(turned, 8, &sideways);
  EXPECT_TRUE(sideways);
  EXPECT_EQ(bands.size(), 1u);
}

TEST(OcrBands, ABlankOrTinyPageIsOneBand) {
  QImage blank(kWidth, kHeight, QImage::Format_Grayscale8);
  blank.fill(255);
  EXPECT_EQ(bands_of(blank).size(), 1u);
  QImage tiny(10, 10, QImage::Format_Grayscale8);
  tiny.fill(0);
  EXPECT_EQ(bands_of(tiny).size(), 1u);
}

}  // namespace
}  // namespace docdsa
