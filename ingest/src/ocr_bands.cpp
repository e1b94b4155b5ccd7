#include "docdsa/ingest/ocr_bands.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace docdsa::ingest {

namespace {

constexpr int kCell = 4;  // the ink map's cells: 4 x 4 pixels (75 per inch at 300 dpi)

// Otsu's threshold over a sample of the page: the grey level that best splits ink from paper.
int otsu(const uint8_t* gray, int width, int height, int stride, int* paper) {
  std::array<double, 256> hist{};
  double n = 0;
  for (int y = 0; y < height; y += 2)
    for (int x = 0; x < width; x += 2) hist[gray[static_cast<size_t>(y) * stride + x]] += 1, n += 1;
  double sum = 0;
  for (int i = 0; i < 256; ++i) sum += i * hist[i];
  double w0 = 0, sum0 = 0, best = -1;
  int t = 128;
  for (int i = 0; i < 255; ++i) {
    w0 += hist[i];
    sum0 += i * hist[i];
    if (w0 == 0 || w0 == n) continue;
    const double m0 = sum0 / w0, m1 = (sum - sum0) / (n - w0);
    const double between = w0 * (n - w0) * (m0 - m1) * (m0 - m1);
    if (between > best) best = between, t = i;
  }
  // Paper: the commonest grey above the threshold.
  int p = 255;
  for (int i = t + 1; i < 256; ++i)
    if (hist[i] > hist[p]) p = i;
  *paper = p;
  return t;
}

}  // namespace

std::vector<OcrBand> find_ocr_bands(const uint8_t* gray, int width, int height, int stride, int pieces, bool* sideways) {
  if (sideways) *sideways = false;
  OcrBand whole;
  whole.top = -1e9, whole.bottom = 1e9, whole.y0 = 0, whole.y1 = height;
  if (pieces <= 1 || width < 64 || height < 64) return {whole};
  int paper = 255;
  const int threshold = otsu(gray, width, height, stride, &paper);
  whole.paper = static_cast<uint8_t>(paper);
  // The ink map: a cell is ink when at least 2 of its pixels are (a lone speck is not).
  const int cw = (width + kCell - 1) / kCell, ch = (height + kCell - 1) / kCell;
  std::vector<uint8_t> count(static_cast<size_t>(cw) * ch, 0);
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = gray + static_cast<size_t>(y) * stride;
    uint8_t* crow = count.data() + static_cast<size_t>(y / kCell) * cw;
    for (int x = 0; x < width; ++x)
      if (row[x] <= threshold) ++crow[x / kCell];
  }
  std::vector<std::pair<int, int>> ink;  // (cx, cy)
  for (int cy = 0; cy < ch; ++cy)
    for (int cx = 0; cx < cw; ++cx)
      if (count[static_cast<size_t>(cy) * cw + cx] >= 2) ink.emplace_back(cx, cy);
  if (ink.size() < 50) return {whole};

  // The skew: the slope whose row profile is most peaked (text lines then fall into few rows).
  const int pad = static_cast<int>(std::ceil(cw * std::tan(3.2 * M_PI / 180))) + 1;
  const int rows = ch + 2 * pad;
  double best_slope = 0, best_score = -1;
  std::vector<int> profile(rows);
  const auto fill = [&](double slope) {
    std::fill(profile.begin(), profile.end(), 0);
    for (const auto& [cx, cy] : ink) ++profile[cy - static_cast<int>(std::lround(cx * slope)) + pad];
  };
  for (int step = 0; step <= 40; ++step) {  // 0, +0.15, -0.15, ... +-3 degrees
    const double deg = (step + 1) / 2 * 0.15 * (step % 2 ? 1 : -1);
    const double slope = std::tan(deg * M_PI / 180);
    fill(slope);
    double score = 0;
    for (int v : profile) score += static_cast<double>(v) * v;
    if (score > best_score * 1.002) best_score = score, best_slope = slope;
  }
  fill(best_slope);

  // Runs of ink rows (text lines, or several merged) between blank rows.
  struct Run {
    int r0, r1;  // profile rows [r0, r1)
    long ink;
    double work_before = 0;
  };
  std::vector<Run> runs;
  for (int r = 0; r < rows;) {
    if (profile[r] == 0) {
      ++r;
      continue;
    }
    Run run{r, r, 0};
    while (r < rows && profile[r] > 0) run.ink += profile[r++];
    run.r1 = r;
    runs.push_back(run);
  }
  if (sideways && runs.size() < 10) {
    // Few lines across the page: do its lines run down it instead (a page turned 90 degrees)?
    const int cpad = static_cast<int>(std::ceil(ch * std::tan(3.2 * M_PI / 180))) + 1;
    std::vector<int> cprofile(cw + 2 * cpad);
    const auto cfill = [&](double slope) {
      std::fill(cprofile.begin(), cprofile.end(), 0);
      for (const auto& [cx, cy] : ink) ++cprofile[cx - static_cast<int>(std::lround(cy * slope)) + cpad];
    };
    double cbest_slope = 0, cbest_score = -1;
    for (int step = 0; step <= 40; ++step) {
      const double slope = std::tan((step + 1) / 2 * 0.15 * (step % 2 ? 1 : -1) * M_PI / 180);
      cfill(slope);
      double score = 0;
      for (int v : cprofile) score += static_cast<double>(v) * v;
      if (score > cbest_score * 1.002) cbest_score = score, cbest_slope = slope;
    }
    cfill(cbest_slope);
    size_t column_runs = 0;
    for (size_t i = 0; i < cprofile.size(); ++i)
      if (cprofile[i] > 0 && (i == 0 || cprofile[i - 1] == 0)) ++column_runs;
    *sideways = column_runs >= 10 && column_runs > 3 * runs.size();
  }
  if (runs.size() < 2) return {whole};
  // Tesseract's work on a line is about its length over its height (it scales each line to a
  // fixed height): a run's ink over its height, where a run taller than two usual lines is
  // several lines merged and counts with the usual height.
  std::vector<int> heights;
  for (const auto& run : runs) heights.push_back(run.r1 - run.r0);
  std::nth_element(heights.begin(), heights.begin() + heights.size() / 2, heights.end());
  const int usual_height = std::max(1, heights[heights.size() / 2]);
  double total = 0;
  for (auto& run : runs) {
    const int h = run.r1 - run.r0;
    run.work_before = total;
    total += static_cast<double>(run.ink) / (h > 2 * usual_height ? usual_height : h);
  }

  // Which cells of a run's rows hold ink, by column.
  std::vector<uint8_t> occ(cw);
  const auto occupancy = [&](const Run& run) {
    std::fill(occ.begin(), occ.end(), 0);
    for (int r = run.r0; r < run.r1; ++r)
      for (int cx = 0; cx < cw; ++cx) {
        const int cy = r - pad + static_cast<int>(std::lround(cx * best_slope));
        // Columns lean with the skew too: their x, turned back upright.
        const int ux = std::clamp(cx + static_cast<int>(std::lround(cy * best_slope)), 0, cw - 1);
        if (cy >= 0 && cy < ch && count[static_cast<size_t>(cy) * cw + cx] >= 2) occ[ux] = 1;
      }
  };
  // The text's left and right edges: where the page's ink starts and ends, ignoring a stray 1%.
  std::vector<int> xs;
  xs.reserve(ink.size());
  for (const auto& [cx, cy] : ink) xs.push_back(cx);
  std::nth_element(xs.begin(), xs.begin() + xs.size() / 100, xs.end());
  const int left = xs[xs.size() / 100];
  std::nth_element(xs.begin(), xs.begin() + xs.size() * 99 / 100, xs.end());
  const int right = xs[xs.size() * 99 / 100];
  const int tolerance = std::max(1, (right - left) * 15 / 100);
  const int margin = (right - left) * 12 / 100;
  // A gap wider than a word space but as narrow as a column gutter: 1.4% of the page width.
  const int gutter = std::max(2, static_cast<int>(std::lround(0.014 * cw)));
  // Per run: a gutter (a gap wider than a word space in the middle of the page: text side by
  // side), and whether it is a full-width line (from near the left edge to near the right, no gutter).
  struct Shape {
    bool gutter = false, full = false;
  };
  const auto shape = [&](const Run& run) {
    occupancy(run);
    int first = -1, last = -1, gap = 0, widest = 0;
    for (int cx = 0; cx < cw; ++cx) {
      if (!occ[cx]) {
        ++gap;
        continue;
      }
      // Gaps near the edges are a bullet's or a number's, not a gutter.
      if (first >= 0 && cx > left + margin && cx - gap < right - margin) widest = std::max(widest, gap);
      if (first < 0) first = cx;
      last = cx, gap = 0;
    }
    Shape sh;
    sh.gutter = widest >= gutter;
    sh.full = first >= 0 && first <= left + tolerance && last >= right - tolerance && !sh.gutter;
    return sh;
  };

  // The candidate cuts: the middle of each blank gap where the text above cannot continue below
  // in a column: beside a full-width line, or below text that has had no columns since the last
  // full-width line (or the top of the page).
  struct Cut {
    double row;  // profile row (cells, fractional)
    int gap;     // blank rows
    double work_before;
  };
  std::vector<Cut> cuts;
  std::vector<int> gaps;
  std::vector<Shape> shapes;
  for (const auto& run : runs) shapes.push_back(shape(run));
  bool columns_above = false;
  for (size_t i = 1; i < runs.size(); ++i) {
    const int gap = runs[i].r0 - runs[i - 1].r1;
    gaps.push_back(gap);
    if (shapes[i - 1].full)
      columns_above = false;
    else if (shapes[i - 1].gutter)
      columns_above = true;
    if (shapes[i - 1].full || shapes[i].full || !columns_above)
      cuts.push_back({(runs[i - 1].r1 + runs[i].r0) / 2.0, gap, runs[i].work_before});
  }
  if (cuts.empty()) return {whole};
  std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
  const int usual_gap = gaps[gaps.size() / 2];

  // For each of the pieces - 1 targets of equal work, the widest candidate gap near it.
  std::vector<Cut> chosen;
  for (int k = 1; k < pieces; ++k) {
    const double target = total * k / pieces;
    const double reach = total / pieces / 2;
    const Cut* pick = nullptr;
    for (const auto& c : cuts) {
      if (std::abs(c.work_before - target) > reach) continue;
      if (!chosen.empty() && c.work_before <= chosen.back().work_before) continue;
      if (!pick || c.gap > pick->gap) pick = &c;
    }
    if (pick) chosen.push_back(*pick);
  }
  if (chosen.empty()) return {whole};

  // Bands in pixels: a cut at profile row r is the line y = (r - pad) * kCell + slope * x.
  std::vector<OcrBand> out;
  const double slope = best_slope;
  const auto line_y = [&](double r) { return (r - pad) * static_cast<double>(kCell); };
  double top = -1e9;
  for (size_t i = 0; i <= chosen.size(); ++i) {
    OcrBand b;
    b.slope = slope, b.paper = whole.paper;
    b.top = top;
    b.bottom = i < chosen.size() ? line_y(chosen[i].row) : 1e9;
    b.paragraph_after = i < chosen.size() && chosen[i].gap > usual_gap * 3 / 2;
    b.work = ((i < chosen.size() ? chosen[i].work_before : total) - (i ? chosen[i - 1].work_before : 0)) / total;
    const double top_min = std::min(b.top, b.top + slope * width), bottom_max = std::max(b.bottom, b.bottom + slope * width);
    b.y0 = std::clamp(static_cast<int>(std::floor(top_min)), 0, height);
    b.y1 = std::clamp(static_cast<int>(std::ceil(bottom_max)) + 1, 0, height);
    top = b.bottom;
    if (b.y1 > b.y0) out.push_back(b);
  }
  return out;
}

std::vector<uint8_t> ocr_band_pixels(const uint8_t* gray, int width, int height, int stride, const OcrBand& band) {
  const int y0 = std::clamp(band.y0, 0, height), y1 = std::clamp(band.y1, y0, height);
  std::vector<uint8_t> out(static_cast<size_t>(width) * (y1 - y0));
  for (int y = y0; y < y1; ++y) {
    const uint8_t* src = gray + static_cast<size_t>(y) * stride;
    uint8_t* dst = out.data() + static_cast<size_t>(y - y0) * width;
    for (int x = 0; x < width; ++x) {
      const double off = band.slope * x;
      dst[x] = (y < band.top + off || y >= band.bottom + off) ? band.paper : src[x];
    }
  }
  return out;
}

}  // namespace docdsa::ingest
