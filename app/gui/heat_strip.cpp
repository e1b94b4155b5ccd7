#include "heat_strip.h"

#include <QHelpEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>
#include <algorithm>
#include <cmath>
#include <numeric>

namespace docdsa::gui {

std::vector<float> attention_intensity(const std::vector<float>& heat, const std::vector<float>& sizes) {
  const size_t n = std::min(heat.size(), sizes.size());
  std::vector<float> out(heat.size(), 0.0f);
  double h = 0, z = 0, max_d = 0;
  for (size_t i = 0; i < n; ++i) {
    h += heat[i], z += std::max(sizes[i], 1.0f);
    max_d = std::max(max_d, static_cast<double>(heat[i]) / std::max(sizes[i], 1.0f));
  }
  if (h <= 0 || z <= 0) return out;
  const double mean = h / z;
  if (max_d <= mean * 1.0001) {  // flat: every segment equally attended
    for (size_t i = 0; i < n; ++i) out[i] = heat[i] > 0 ? 0.15f : 0.0f;
    return out;
  }
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(heat[i]) / std::max(sizes[i], 1.0f);
    out[i] = static_cast<float>(std::clamp((d - mean) / (max_d - mean), 0.0, 1.0));
  }
  return out;
}

HeatStrip::HeatStrip(QWidget* parent) : QWidget(parent) {
  setMinimumWidth(16);
  setSizePolicy(QSizePolicy::Fixed, QSizePolicy::Expanding);
  setCursor(Qt::PointingHandCursor);
  setToolTip(tr("Where the answer's attention went"));
}

void HeatStrip::set_data(std::vector<float> sizes, std::vector<float> heat) {
  sizes_ = std::move(sizes);
  heat_ = std::move(heat);
  heat_.resize(sizes_.size(), 0.0f);
  cum_.assign(sizes_.size() + 1, 0.0f);
  // A floor keeps short segments clickable.
  const float total = std::accumulate(sizes_.begin(), sizes_.end(), 0.0f);
  const float floor = total > 0 ? total * 0.002f : 1.0f;
  float run = 0;
  for (size_t i = 0; i < sizes_.size(); ++i) run += std::max(sizes_[i], floor), cum_[i + 1] = run;
  for (auto& c : cum_) c = run > 0 ? c / run : 0.0f;
  level_ = attention_intensity(heat_, sizes_);
  update();
}

void HeatStrip::set_current(int segment) {
  current_ = segment;
  update();
}

int HeatStrip::segment_at(int y) const {
  if (sizes_.empty() || height() <= 0) return -1;
  const float f = static_cast<float>(y) / static_cast<float>(height());
  auto it = std::upper_bound(cum_.begin(), cum_.end(), f);
  const int i = static_cast<int>(it - cum_.begin()) - 1;
  return std::clamp(i, 0, static_cast<int>(sizes_.size()) - 1);
}

void HeatStrip::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().color(QPalette::Base));
  const int h = height(), w = width();
  for (size_t i = 0; i < sizes_.size(); ++i) {
    const int y0 = static_cast<int>(cum_[i] * static_cast<float>(h));
    const int y1 = std::max(y0 + 1, static_cast<int>(cum_[i + 1] * static_cast<float>(h)));
    if (level_[i] > 0) {
      const float t = level_[i];
      p.fillRect(QRect(1, y0, w - 2, y1 - y0), QColor::fromHsvF(0.08f - 0.08f * t, 0.25f + 0.75f * t, 1.0f - 0.15f * t));
    }
  }
  if (current_ >= 0 && current_ < static_cast<int>(sizes_.size())) {
    const int y0 = static_cast<int>(cum_[static_cast<size_t>(current_)] * static_cast<float>(h));
    const int y1 = std::max(y0 + 2, static_cast<int>(cum_[static_cast<size_t>(current_) + 1] * static_cast<float>(h)));
    p.setPen(QPen(palette().color(QPalette::Highlight), 2));
    p.drawRect(QRect(1, y0, w - 3, y1 - y0 - 1));
  }
  p.setPen(palette().color(QPalette::Mid));
  p.drawRect(rect().adjusted(0, 0, -1, -1));
}

void HeatStrip::mousePressEvent(QMouseEvent* e) {
  const int i = segment_at(static_cast<int>(e->position().y()));
  if (i >= 0) emit segment_clicked(i);
}

bool HeatStrip::event(QEvent* e) {
  if (e->type() == QEvent::ToolTip) {
    auto* he = static_cast<QHelpEvent*>(e);
    const int i = segment_at(he->pos().y());
    if (i >= 0) {
      float total = std::accumulate(heat_.begin(), heat_.end(), 0.0f);
      QToolTip::showText(he->globalPos(),
                         total > 0 ? tr("Part %1: %2% of the answer's selections")
                                         .arg(i + 1)
                                         .arg(100.0 * heat_[static_cast<size_t>(i)] / total, 0, 'f', 1)
                                   : tr("Part %1").arg(i + 1),
                         this);
    }
    return true;
  }
  return QWidget::event(e);
}

}  // namespace docdsa::gui
