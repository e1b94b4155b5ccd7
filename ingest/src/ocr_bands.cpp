#include "docdsa/ingest/ocr_bands.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

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
  whole.top = -1e9, whole.bottom = 1e9, whole.y0 = 0, whole.y1 = height, whole.x1 = width;
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
  if (runs.empty()) return {whole};
  // Tesseract's work on a line is about its length over its height (it scales each line to a
  // fixed height): a run's ink over its height, where a run taller than two usual lines is
  // several lines merged and counts with the usual height.
  std::vector<int> heights;
  for (const auto& run : runs) heights.push_back(run.r1 - run.r0);
  std::nth_element(heights.begin(), heights.begin() + heights.size() / 2, heights.end());
  const int usual_height = std::max(1, heights[heights.size() / 2]);
  const auto work_of = [&](long ink, int h) { return static_cast<double>(ink) / (h > 2 * usual_height ? usual_height : h); };
  double total = 0;
  for (const auto& run : runs) total += work_of(run.ink, run.r1 - run.r0);

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
  // The gutters in an occupancy: blank gaps at least `gutter` wide in the middle of the page
  // (gaps near the edges are a bullet's or a number's), as [first blank cell, last + 1).
  const auto gutters = [&](const std::vector<uint8_t>& occ) {
    std::vector<std::pair<int, int>> out;
    int first = -1, gap = 0;
    for (int cx = 0; cx < cw; ++cx) {
      if (!occ[cx]) {
        ++gap;
        continue;
      }
      if (first >= 0 && gap >= gutter && cx > left + margin && cx - gap < right - margin) out.emplace_back(cx - gap, cx);
      if (first < 0) first = cx;
      gap = 0;
    }
    return out;
  };
  // Per run: a gutter (text side by side), and whether it is a full-width line (from near the
  // left edge to near the right, no gutter).
  struct Shape {
    bool gutter = false, full = false;
  };
  const auto shape = [&](const Run& run) {
    occupancy(run);
    Shape sh;
    sh.gutter = !gutters(occ).empty();
    int first = -1, last = -1;
    for (int cx = 0; cx < cw; ++cx)
      if (occ[cx]) last = cx, first = first < 0 ? cx : first;
    sh.full = first >= 0 && first <= left + tolerance && last >= right - tolerance && !sh.gutter;
    return sh;
  };

  // Where a cut may go between runs i - 1 and i: beside a full-width line, or below text that
  // has had no columns since the last full-width line (or the top of the page). Runs between
  // such places are a block that a cut across the page would split wrongly.
  const size_t n = runs.size();
  std::vector<Shape> shapes;
  for (const auto& run : runs) shapes.push_back(shape(run));
  std::vector<char> may_cut(n, 0);
  std::vector<int> gaps;
  bool columns_above = false;
  for (size_t i = 1; i < n; ++i) {
    gaps.push_back(runs[i].r0 - runs[i - 1].r1);
    if (shapes[i - 1].full)
      columns_above = false;
    else if (shapes[i - 1].gutter)
      columns_above = true;
    may_cut[i] = shapes[i - 1].full || shapes[i].full || !columns_above;
  }
  int usual_gap = 0;
  if (!gaps.empty()) {
    std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
    usual_gap = gaps[gaps.size() / 2];
  }

  // The page as a sequence of pieces of text in reading order, each a run of ink rows across
  // the page, or within one column of a block read column by column. A block in columns that
  // holds more than a band's share of the page's work is read column by column: otherwise it
  // is one band, and on the corpus's Linn leaflet that band alone was 43% of the page, so no
  // number of cores could read the page in less than that band's time.
  enum class Next { kNoCut, kMayCut, kMustCut };  // between a unit and the one after it
  struct Unit {
    int c0 = 0, c1 = 0;          // the cells it spans across (upright): the page's width, or a column's
    double top = 0, bottom = 0;  // the cut lines above and below it (profile rows)
    double work = 0;
    int gap_below = 0;  // blank rows down to the next unit (in its column)
    Next next = Next::kNoCut;
  };
  std::vector<Unit> units;
  // Units from `lines[from, to)`, cells [c0, c1) across, between the cut lines `top` and `bottom`:
  // a cut inside goes through the middle of a gap (where `inner` says one may), and `last` is
  // what follows the final one.
  const auto add_units = [&](const std::vector<Run>& lines, size_t from, size_t to, int c0, int c1, double top, double bottom,
                             Next inner, Next last) {
    const auto mid = [&](size_t i) { return (lines[i - 1].r1 + lines[i].r0) / 2.0; };  // the gap above line i
    for (size_t i = from; i < to; ++i) {
      Unit u;
      u.c0 = c0, u.c1 = c1;
      u.top = i == from ? top : mid(i);
      u.bottom = i + 1 == to ? bottom : mid(i + 1);
      u.work = work_of(lines[i].ink, lines[i].r1 - lines[i].r0);
      u.gap_below = i + 1 < lines.size() ? lines[i + 1].r0 - lines[i].r1 : 0;
      u.next = i + 1 == to ? last : inner;
      units.push_back(u);
    }
  };
  for (size_t b = 0; b < n;) {
    size_t e = b + 1;
    while (e < n && !may_cut[e]) ++e;
    const double top = b == 0 ? -1e9 : (runs[b - 1].r1 + runs[b].r0) / 2.0;
    const double bottom = e == n ? 1e9 : (runs[e - 1].r1 + runs[e].r0) / 2.0;
    double block_work = 0;
    for (size_t i = b; i < e; ++i) block_work += work_of(runs[i].ink, runs[i].r1 - runs[i].r0);
    std::vector<std::pair<int, int>> split;  // the gutters it is read across
    if (pieces > 1 && block_work > total / pieces) {
      std::vector<uint8_t> all(cw, 0);
      for (size_t i = b; i < e; ++i) {
        occupancy(runs[i]);
        for (int cx = 0; cx < cw; ++cx) all[cx] |= occ[cx];
      }
      split = gutters(all);
    }
    if (split.empty()) {
      add_units(runs, b, e, 0, cw, top, bottom, Next::kNoCut, Next::kMayCut);
      b = e;
      continue;
    }
    // Column by column, left to right, as Tesseract reads them; within a column a cut may go
    // through any blank rows. The block's own edges and each column's end are cut.
    if (!units.empty()) units.back().next = Next::kMustCut;
    std::vector<int> edges = {0};  // the columns' left cells, then the page's width
    for (const auto& [g0, g1] : split) edges.push_back((g0 + g1) / 2);
    edges.push_back(cw);
    const int r0 = runs[b].r0, r1 = runs[e - 1].r1;
    std::vector<std::vector<int>> profiles(split.size() + 1, std::vector<int>(r1 - r0, 0));  // ink per row, per column
    for (const auto& [cx, cy] : ink) {
      const int r = cy - static_cast<int>(std::lround(cx * best_slope)) + pad;
      if (r < r0 || r >= r1) continue;
      const int ux = std::clamp(cx + static_cast<int>(std::lround(cy * best_slope)), 0, cw - 1);
      ++profiles[std::upper_bound(edges.begin() + 1, edges.end() - 1, ux) - edges.begin() - 1][r - r0];
    }
    for (size_t c = 0; c < profiles.size(); ++c) {
      const std::vector<int>& col = profiles[c];
      std::vector<Run> lines;
      for (int r = 0; r < r1 - r0;) {
        if (col[r] == 0) {
          ++r;
          continue;
        }
        Run line{r0 + r, r0 + r, 0};
        while (r < r1 - r0 && col[r] > 0) line.ink += col[r++];
        line.r1 = r0 + r;
        lines.push_back(line);
      }
      add_units(lines, 0, lines.size(), edges[c], edges[c + 1], top, bottom, Next::kMayCut, Next::kMustCut);
    }
    b = e;
  }
  units.back().next = Next::kNoCut;  // the page's end
  total = 0;
  std::vector<double> work_before(units.size() + 1, 0);  // before unit i
  for (size_t i = 0; i < units.size(); ++i) work_before[i + 1] = total += units[i].work;

  // The cuts: every one that must be, then for each of the pieces - 1 targets of equal work
  // that none of those is near, the widest gap near it that leaves no band under half a piece
  // (the widest gap near a column's top is often below its heading: a band of three words).
  std::vector<char> cut(units.size(), 0);  // after unit i
  for (size_t i = 0; i < units.size(); ++i) cut[i] = units[i].next == Next::kMustCut;
  const double reach = total / pieces / 2;
  const auto near_a_cut = [&](double w) {
    for (size_t j = 0; j < units.size(); ++j)
      if (cut[j] && std::abs(work_before[j + 1] - w) < reach) return true;
    return false;
  };
  for (int k = 1; k < pieces; ++k) {
    const double target = total * k / pieces;
    if (near_a_cut(target)) continue;
    std::optional<size_t> pick;
    for (size_t i = 0; i < units.size(); ++i) {
      const double w = work_before[i + 1];
      if (units[i].next != Next::kMayCut || std::abs(w - target) > reach || near_a_cut(w) || total - w < reach) continue;
      if (!pick || units[i].gap_below > units[*pick].gap_below) pick = i;
    }
    if (pick) cut[*pick] = 1;
  }

  // Bands in pixels: a cut at profile row r is the line y = (r - pad) * kCell + slope * x, and
  // a column's edge at cell c the line x + slope * y = c * kCell.
  std::vector<OcrBand> out;
  const double slope = best_slope;
  const auto line_y = [&](double r) { return std::abs(r) >= 1e9 ? r : (r - pad) * static_cast<double>(kCell); };
  for (size_t s = 0; s < units.size();) {
    size_t e = s;
    while (e + 1 < units.size() && !cut[e]) ++e;
    OcrBand b;
    b.slope = slope, b.paper = whole.paper;
    b.top = line_y(units[s].top);
    b.bottom = line_y(units[e].bottom);
    b.left = units[s].c0 == 0 ? -1e9 : units[s].c0 * static_cast<double>(kCell);
    b.right = units[s].c1 == cw ? 1e9 : units[s].c1 * static_cast<double>(kCell);
    b.paragraph_after = units[e].next == Next::kMustCut || units[e].gap_below > usual_gap * 3 / 2;
    b.work = (work_before[e + 1] - work_before[s]) / total;
    const double top_min = std::min(b.top, b.top + slope * width), bottom_max = std::max(b.bottom, b.bottom + slope * width);
    b.y0 = std::clamp(static_cast<int>(std::floor(top_min)), 0, height);
    b.y1 = std::clamp(static_cast<int>(std::ceil(bottom_max)) + 1, 0, height);
    const double left_min = std::min(b.left - slope * b.y0, b.left - slope * b.y1);
    const double right_max = std::max(b.right - slope * b.y0, b.right - slope * b.y1);
    b.x0 = std::clamp(static_cast<int>(std::floor(left_min)), 0, width);
    b.x1 = std::clamp(static_cast<int>(std::ceil(right_max)) + 1, 0, width);
    if (b.y1 > b.y0 && b.x1 > b.x0) out.push_back(b);
    s = e + 1;
  }
  if (out.size() < 2) return {whole};
  return out;
}

std::vector<uint8_t> ocr_band_pixels(const uint8_t* gray, int width, int height, int stride, const OcrBand& band) {
  const int y0 = std::clamp(band.y0, 0, height), y1 = std::clamp(band.y1, y0, height);
  const int x0 = std::clamp(band.x0, 0, width), x1 = std::clamp(band.x1, x0, width);
  const int w = x1 - x0;
  std::vector<uint8_t> out(static_cast<size_t>(w) * (y1 - y0));
  for (int y = y0; y < y1; ++y) {
    const uint8_t* src = gray + static_cast<size_t>(y) * stride;
    uint8_t* dst = out.data() + static_cast<size_t>(y - y0) * w;
    for (int x = x0; x < x1; ++x) {
      const double off = band.slope * x, upright = x + band.slope * y;
      const bool inside = y >= band.top + off && y < band.bottom + off && upright >= band.left && upright < band.right;
      dst[x - x0] = inside ? src[x] : band.paper;
    }
  }
  return out;
}

}  // namespace docdsa::ingest
