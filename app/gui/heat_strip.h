// A strip along the document showing where the answer's sparse-attention selections fell:
// one band per segment (page or cue), its height proportional to the segment's length, its
// colour to the share of selections. Clicking a band asks the reader to go there.
#pragma once

#include <QWidget>
#include <vector>

namespace docdsa::gui {

// How strongly each segment was attended, 0..1: selections per character relative to the
// document's average (long segments naturally collect more selections; at or below average
// reads as 0, the most densely attended segment as 1).
std::vector<float> attention_intensity(const std::vector<float>& heat, const std::vector<float>& sizes);

class HeatStrip : public QWidget {
  Q_OBJECT
 public:
  explicit HeatStrip(QWidget* parent = nullptr);
  // sizes: relative length of each segment; heat: share per segment (any scale, >= 0).
  void set_data(std::vector<float> sizes, std::vector<float> heat);
  void set_current(int segment);
  const std::vector<float>& heat() const { return heat_; }
  int segment_at(int y) const;
  QSize sizeHint() const override { return {22, 200}; }

 signals:
  void segment_clicked(int segment);

 protected:
  void paintEvent(QPaintEvent*) override;
  void mousePressEvent(QMouseEvent* e) override;
  bool event(QEvent* e) override;  // tooltips

 private:
  std::vector<float> sizes_, heat_, cum_;  // cum_: segment start as a fraction of the strip
  std::vector<float> level_;               // attention_intensity
  int current_ = -1;
};

}  // namespace docdsa::gui
