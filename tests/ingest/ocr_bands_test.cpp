// Cutting a scanned page into bands read at the same time (ingest/ocr_bands.h), on drawn pages:
// words are black boxes (the cutter sees only ink), so each layout is exact and needs no font.
#include <gtest/gtest.h>

#include <QImage>
#include <QPainter>
#include <QTransform>
#include <algorithm>
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

// The band holds the pixel (x, y): between its cuts, within its column, inside its image.
bool in_band(const ingest::OcrBand& b, int x, int y) {
  const double upright = x + b.slope * y;
  return y >= b.y0 && y < b.y1 && x >= b.x0 && x < b.x1 && y >= b.top + b.slope * x && y < b.bottom + b.slope * x &&
         upright >= b.left && upright < b.right;
}

bool ink(const QImage& img, int x, int y) {
  return x >= 0 && y >= 0 && x < img.width() && y < img.height() && img.constScanLine(y)[x] < 128;
}

// No ink on a band's edges: its cut lines (across its column) and its column's edges (down its
// rows) go through paper only.
void expect_edges_through_paper(const QImage& img, const ingest::OcrBand& b) {
  int inked = 0;
  for (int x = b.x0; x < b.x1; ++x)
    for (const double cut : {b.top, b.bottom}) {
      const int y = static_cast<int>(std::lround(cut + b.slope * x));
      if (x + b.slope * y >= b.left && x + b.slope * y < b.right && ink(img, x, y)) ++inked;
    }
  for (int y = b.y0; y < b.y1; ++y)
    for (const double edge : {b.left, b.right}) {
      const int x = static_cast<int>(std::lround(edge - b.slope * y));
      if (y >= b.top + b.slope * x && y < b.bottom + b.slope * x && ink(img, x, y)) ++inked;
    }
  EXPECT_EQ(inked, 0) << "band y = " << b.top << ".." << b.bottom << " + " << b.slope << " x, upright x = " << b.left << ".."
                      << b.right;
}

// The bands share the page out: each ink pixel is in exactly one band, no band's edge cuts ink,
// and a band's own image is the page inside its edges and paper outside them.
void expect_bands_tile_the_page(const QImage& img, const std::vector<ingest::OcrBand>& bands) {
  ASSERT_FALSE(bands.empty());
  double work = 0;
  for (const auto& b : bands) {
    work += b.work;
    expect_edges_through_paper(img, b);
    const auto px = ingest::ocr_band_pixels(img.constBits(), img.width(), img.height(), static_cast<int>(img.bytesPerLine()), b);
    ASSERT_EQ(px.size(), static_cast<size_t>(b.x1 - b.x0) * (b.y1 - b.y0));
    for (int y = b.y0; y < b.y1; y += 3)
      for (int x = b.x0; x < b.x1; x += 5) {
        const uint8_t v = px[static_cast<size_t>(y - b.y0) * (b.x1 - b.x0) + (x - b.x0)];
        ASSERT_EQ(v, in_band(b, x, y) ? img.constScanLine(y)[x] : b.paper) << x << "," << y;
      }
  }
  EXPECT_NEAR(work, 1.0, 1e-6);
  int strays = 0, shared = 0;
  for (int y = 0; y < img.height(); y += 2)
    for (int x = 0; x < img.width(); x += 2) {
      if (!ink(img, x, y)) continue;
      int holders = 0;
      for (const auto& b : bands) holders += in_band(b, x, y);
      strays += holders == 0, shared += holders > 1;
    }
  EXPECT_EQ(strays, 0) << "ink in no band";
  EXPECT_EQ(shared, 0) << "ink in two bands";
}

// Whether the band holds any ink of the rectangle [x0, x1) x [y0, y1).
bool holds_ink(const QImage& img, const ingest::OcrBand& b, int x0, int x1, int y0, int y1) {
  for (int y = y0; y < y1; y += 2)
    for (int x = x0; x < x1; x += 2)
      if (ink(img, x, y) && in_band(b, x, y)) return true;
  return false;
}

// The bands hold the left column [300, 1225) and the right one [1325, 2250) of rows [y0, y1)
// apart, every band of the left one before every band of the right one.
void expect_columns_read_in_order(const QImage& img, const std::vector<ingest::OcrBand>& bands, int y0, int y1) {
  int last_left = -1, first_right = -1;
  for (int i = 0; i < static_cast<int>(bands.size()); ++i) {
    const bool left = holds_ink(img, bands[i], 300, 1225, y0, y1), right = holds_ink(img, bands[i], 1325, 2250, y0, y1);
    EXPECT_FALSE(left && right) << "band " << i << " holds both columns";
    if (left) last_left = i;
    if (right && first_right < 0) first_right = i;
  }
  ASSERT_GE(last_left, 0);
  ASSERT_GE(first_right, 0);
  EXPECT_LT(last_left, first_right);
}

// The band spans the page's width (it is not a column's).
void expect_across_the_page(const ingest::OcrBand& b) {
  EXPECT_EQ(b.x0, 0);
  EXPECT_EQ(b.x1, kWidth);
}

TEST(OcrBands, ASingleColumnPageIsCutBetweenItsLines) {
  const Drawn d = draw_page(50, 0, 0);
  const auto bands = bands_of(d.img);
  ASSERT_GE(bands.size(), 4u);
  expect_bands_tile_the_page(d.img, bands);
  for (size_t i = 0; i < bands.size(); ++i) {
    EXPECT_NEAR(bands[i].slope, 0.0, 1e-9);
    expect_across_the_page(bands[i]);
    EXPECT_GT(bands[i].work, 0.05);  // about equal shares, none tiny
    if (i > 0) {
      EXPECT_EQ(bands[i].top, bands[i - 1].bottom);  // top to bottom
    }
  }
  // One piece asked for, or one worker: the page whole.
  const auto one = bands_of(d.img, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].y0, 0);
  EXPECT_EQ(one[0].y1, kHeight);
  expect_across_the_page(one[0]);
}

// A two-column part that holds more than a band's share of the page is read column by column:
// no band holds both columns, the left one's bands come first, and the full-width parts above
// and below are bands of their own. (Cut across, it would read the top of both columns before
// the rest of the first; whole, it was one band, and no number of cores read the page faster.)
TEST(OcrBands, TwoColumnsAreReadOneAfterTheOther) {
  for (const auto& [above, below] : {std::pair{8, 8}, std::pair{0, 10}, std::pair{10, 0}, std::pair{0, 0}}) {
    SCOPED_TRACE(testing::Message() << above << " lines above the columns and " << below << " below");
    const Drawn d = draw_page(above, 40, below);
    const auto bands = bands_of(d.img);
    ASSERT_GE(bands.size(), 4u);
    expect_bands_tile_the_page(d.img, bands);
    expect_columns_read_in_order(d.img, bands, d.columns_top, d.columns_bottom);
    for (size_t i = 0; i < bands.size(); ++i) {
      const bool columns = holds_ink(d.img, bands[i], 0, kWidth, d.columns_top, d.columns_bottom);
      const bool rest = holds_ink(d.img, bands[i], 0, kWidth, 0, d.columns_top - 20) ||
                        holds_ink(d.img, bands[i], 0, kWidth, d.columns_bottom + 20, kHeight);
      EXPECT_FALSE(columns && rest) << "band " << i << " holds a column and a full-width line";
      EXPECT_GT(bands[i].work, 0.02);
    }
  }
}

// A short two-column part (less than a band's share) stays whole: no cut goes across it, and
// it is read across the page as before.
TEST(OcrBands, AShortTwoColumnPartIsNotCutAcross) {
  const Drawn d = draw_page(20, 4, 20);
  const auto bands = bands_of(d.img);
  ASSERT_GE(bands.size(), 4u);
  expect_bands_tile_the_page(d.img, bands);
  for (size_t i = 0; i < bands.size(); ++i) {
    expect_across_the_page(bands[i]);
    if (i + 1 < bands.size()) {
      const double cut = bands[i].bottom;
      EXPECT_TRUE(cut <= d.columns_top || cut >= d.columns_bottom) << "cut at " << cut << " inside the columns";
    }
  }
}

// The right column ends first: the left column's last lines, alone on their rows, are still
// part of the columns, read after the rest of the left column and before the right one.
TEST(OcrBands, AColumnThatEndsFirstIsReadWhole) {
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
  ASSERT_GE(bands.size(), 2u);
  expect_bands_tile_the_page(img, bands);
  expect_columns_read_in_order(img, bands, 0, kHeight);
}

// A page scanned 1.5 degrees askew is cut along its lines, through paper only, its columns
// along their leaning edges.
TEST(OcrBands, ASkewedPageIsCutAlongItsLines) {
  for (const int column_lines : {0, 30}) {
    SCOPED_TRACE(testing::Message() << column_lines << " two-column lines");
    const Drawn d = draw_page(column_lines ? 10 : 50, column_lines, column_lines ? 10 : 0, 1.5);
    const auto bands = bands_of(d.img);
    ASSERT_GE(bands.size(), 3u);
    expect_bands_tile_the_page(d.img, bands);
    for (const auto& b : bands) EXPECT_NEAR(std::atan(b.slope) * 180 / M_PI, 1.5, 0.2);
    if (column_lines) {
      EXPECT_TRUE(std::any_of(bands.begin(), bands.end(), [](const auto& b) { return b.left > -1e8; }));
    }
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

// Pages of random layouts (full-width parts and parts in one to three columns of random
// length, line spacing and word widths, a random skew of up to 2 degrees): whatever the cuts,
// the bands share out every bit of ink exactly once and no edge goes through ink.
TEST(OcrBands, RandomLayoutsAreSharedOutWhole) {
  int read_in_columns = 0;  // pages with a part read column by column
  for (unsigned seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    unsigned r = seed * 2654435761u;
    const auto next = [&](int n) {
      r = r * 1103515245u + 12345u;
      return static_cast<int>((r >> 8) % static_cast<unsigned>(n));
    };
    QImage rgb(kWidth, kHeight, QImage::Format_RGB32);
    rgb.fill(Qt::white);
    {
      QPainter p(&rgb);
      p.translate(kWidth / 2.0, kHeight / 2.0);
      p.rotate((next(41) - 20) / 10.0);
      p.translate(-kWidth / 2.0, -kHeight / 2.0);
      int y = 250 + next(200);
      while (y < kHeight - 400) {
        const int columns = 1 + next(3), lines = 2 + next(25), spacing = 45 + next(25);
        const int gutter = 80 + next(80), span = (1950 - (columns - 1) * gutter) / columns;
        for (int i = 0; i < lines && y < kHeight - 300; ++i, y += spacing)
          for (int c = 0; c < columns; ++c)
            if (next(10) > 0) draw_line(p, 300 + c * (span + gutter), 300 + c * (span + gutter) + span - next(300), y, r);
        y += 40 + next(80);
      }
    }
    const QImage img = rgb.convertToFormat(QImage::Format_Grayscale8);
    const auto bands = bands_of(img);
    expect_bands_tile_the_page(img, bands);
    read_in_columns += std::any_of(bands.begin(), bands.end(), [](const auto& b) { return b.left > -1e8 || b.right < 1e8; });
  }
  EXPECT_GE(read_in_columns, 3) << "the layouts should exercise column bands";
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
