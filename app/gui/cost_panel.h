// What sparse attention saved: for the selected answer, for all answers about the document,
// and for this session — tokens read, attention FLOPs dense vs DSA, memory read per token,
// time and money, each labelled counted, measured or estimated — and a chart of attention
// cost per generated token against context length, with the document marked on it.
#pragma once

#include <QWidget>

#include "docdsa/app/doc_prompt.h"
#include "docdsa/engine/dsa.h"
#include "docdsa/engine/model.h"

class QComboBox;
class QLabel;
class QTableWidget;
QT_BEGIN_NAMESPACE
class QChartView;
class QLineSeries;
class QScatterSeries;
class QValueAxis;
QT_END_NAMESPACE

namespace docdsa::gui {

class CostPanel : public QWidget {
  Q_OBJECT
 public:
  explicit CostPanel(QWidget* parent = nullptr);
  void set_prices(const app::Prices& p);
  void set_model(const Model* m, int top_k, int rank);
  // The selected answer's report; `document` sums every answer about this document.
  // `library` sums every stored run in the library.
  void show_costs(const CostReport* answer, const CostReport* document, const CostReport* session, const CostReport* library,
                  int doc_tokens);
  // The answer's document came from the stored context: its tokens and what reading them cost.
  void set_cached(int tokens, const CostReport& reading) { cached_tokens_ = tokens, cached_reading_ = reading; }
  QTableWidget* table() const { return table_; }
  QChartView* chart() const { return chart_view_; }

 private:
  void fill();
  void fill_chart();
  QComboBox* scope_ = nullptr;
  QTableWidget* table_ = nullptr;
  QLabel* note_ = nullptr;
  QChartView* chart_view_ = nullptr;
  QLineSeries *dense_series_ = nullptr, *dsa_series_ = nullptr;
  QScatterSeries* here_series_ = nullptr;
  QValueAxis *x_axis_ = nullptr, *y_axis_ = nullptr;
  app::Prices prices_;
  static constexpr int kScopes = 4;
  CostReport reports_[kScopes];
  bool have_[kScopes] = {};
  int doc_tokens_ = 0;
  int cached_tokens_ = 0;
  CostReport cached_reading_;
  // Model shape for the chart.
  int n_layer_ = 0, n_head_ = 0, head_dim_ = 0, n_head_kv_ = 0, top_k_ = 2048, rank_ = 16;
};

// "1.23e+11" -> "123 G", bytes -> "12.3 MB", seconds -> "1.2 s".
QString si(double v, const QString& unit);

}  // namespace docdsa::gui
