#include "cost_panel.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>
#include <algorithm>
#include <cmath>

namespace docdsa::gui {

QString si(double v, const QString& unit) {
  static const char* prefixes[] = {"", "k", "M", "G", "T", "P"};
  int i = 0;
  double a = std::fabs(v);
  while (a >= 1000.0 && i < 5) a /= 1000.0, v /= 1000.0, ++i;
  return QStringLiteral("%1 %2%3").arg(v, 0, 'f', a >= 100 ? 0 : a >= 10 ? 1 : 2).arg(QLatin1String(prefixes[i])).arg(unit);
}

CostPanel::CostPanel(QWidget* parent) : QWidget(parent) {
  auto* v = new QVBoxLayout(this);
  auto* top = new QHBoxLayout();
  top->addWidget(new QLabel(tr("Show"), this));
  scope_ = new QComboBox(this);
  scope_->addItems({tr("This answer"), tr("All answers about this document"), tr("This session"), tr("Whole library")});
  scope_->setAccessibleName(tr("Cost scope"));
  top->addWidget(scope_);
  top->addStretch();
  v->addLayout(top);
  table_ = new QTableWidget(0, 4, this);
  table_->setHorizontalHeaderLabels({tr("Counted unless noted"), tr("Dense"), tr("DSA"), tr("Saving")});
  table_->setSizeAdjustPolicy(QAbstractScrollArea::AdjustToContents);
  table_->setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  table_->setWordWrap(false);
  table_->verticalHeader()->hide();
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
  table_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  v->addWidget(table_);
  note_ = new QLabel(this);
  note_->setWordWrap(true);
  note_->setStyleSheet(QStringLiteral("color:gray"));
  v->addWidget(note_);
  auto* chart = new QChart();
  chart->setTitle(tr("Attention cost of one generated token vs. context length"));
  chart->legend()->setAlignment(Qt::AlignBottom);
  dense_series_ = new QLineSeries(chart);
  dense_series_->setName(tr("Dense"));
  dsa_series_ = new QLineSeries(chart);
  dsa_series_->setName(tr("DSA"));
  here_series_ = new QScatterSeries(chart);
  here_series_->setName(tr("This document"));
  here_series_->setMarkerSize(10);
  for (QAbstractSeries* sr : {static_cast<QAbstractSeries*>(dense_series_), static_cast<QAbstractSeries*>(dsa_series_),
                              static_cast<QAbstractSeries*>(here_series_)})
    chart->addSeries(sr);
  x_axis_ = new QValueAxis(chart);
  x_axis_->setTitleText(tr("Context length (K tokens)"));
  x_axis_->setRange(0, 128);
  x_axis_->setTickCount(5);
  x_axis_->setLabelFormat(QStringLiteral("%d"));
  y_axis_ = new QValueAxis(chart);
  y_axis_->setTitleText(tr("Attention MFLOP / token"));
  y_axis_->setLabelFormat(QStringLiteral("%.0f"));
  chart->addAxis(x_axis_, Qt::AlignBottom);
  chart->addAxis(y_axis_, Qt::AlignLeft);
  for (QAbstractSeries* sr : chart->series()) sr->attachAxis(x_axis_), sr->attachAxis(y_axis_);
  chart_view_ = new QChartView(chart, this);
  chart_view_->setRenderHint(QPainter::Antialiasing);
  chart_view_->setMinimumHeight(240);
  v->addWidget(chart_view_, 1);
  connect(scope_, &QComboBox::currentIndexChanged, this, [this] { fill(); });
  fill();
}

void CostPanel::set_prices(const app::Prices& p) {
  prices_ = p;
  fill();
}

void CostPanel::set_model(const Model* m, int top_k, int rank) {
  if (m) {
    const auto& c = m->config();
    n_layer_ = c.n_layer, n_head_ = c.n_head, n_head_kv_ = c.n_head_kv, head_dim_ = c.n_embd / std::max(1, c.n_head);
  }
  top_k_ = top_k, rank_ = rank;
  fill_chart();
}

void CostPanel::show_costs(const CostReport* answer, const CostReport* document, const CostReport* session,
                           const CostReport* library, int doc_tokens) {
  const CostReport* in[kScopes] = {answer, document, session, library};
  for (int i = 0; i < kScopes; ++i) {
    have_[i] = in[i] != nullptr;
    if (in[i]) reports_[i] = *in[i];
  }
  doc_tokens_ = doc_tokens;
  fill();
  fill_chart();
}

void CostPanel::fill() {
  const int s = std::max(0, scope_->currentIndex());
  table_->setRowCount(0);
  if (!have_[s]) {
    note_->setText(tr("Ask a question to see what sparse attention saves."));
    return;
  }
  CostReport c = reports_[s];
  c.estimate_dense_times();
  const auto ratio = [](double a, double b) { return b > 0 ? QStringLiteral("%1×").arg(a / b, 0, 'f', 2) : QString(); };
  const auto row = [&](const QString& what, const QString& dense, const QString& dsa, const QString& saving, const QString& how) {
    const int r = table_->rowCount();
    table_->insertRow(r);
    const QString cells[] = {how.isEmpty() ? what : what + QStringLiteral(" (") + how + QLatin1Char(')'), dense, dsa, saving};
    for (int i = 0; i < 4; ++i) {
      auto* it = new QTableWidgetItem(cells[i]);
      it->setToolTip(how);
      if (i >= 1 && i <= 3) it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      table_->setItem(r, i, it);
    }
  };
  const QString tokens = tr("%1 + %2").arg(c.prompt_tokens).arg(c.decoded_tokens);
  row(tr("Tokens (prompt + generated)"), tokens, tokens, QString(), QString());
  row(tr("Attention FLOPs (with indexer)"), si(c.attn_flops_dense, QStringLiteral("FLOP")),
      si(c.attn_flops_dsa, QStringLiteral("FLOP")), ratio(c.attn_flops_dense, c.attn_flops_dsa), QString());
  row(tr("All FLOPs (with linear layers)"), si(c.attn_flops_dense + c.linear_flops, QStringLiteral("FLOP")),
      si(c.attn_flops_dsa + c.linear_flops, QStringLiteral("FLOP")),
      ratio(c.attn_flops_dense + c.linear_flops, c.attn_flops_dsa + c.linear_flops), QString());
  row(tr("Memory read per new token"), si(c.bytes_per_decoded_token_dense(), QStringLiteral("B")),
      si(c.bytes_per_decoded_token_dsa(), QStringLiteral("B")),
      ratio(c.bytes_per_decoded_token_dense(), c.bytes_per_decoded_token_dsa()), QString());
  const QString dense_how = c.dense_measured ? tr("measured, both") : tr("measured; dense est.");
  row(tr("Reading (prefill)"), QStringLiteral("%1 s").arg(c.dense_prefill_seconds, 0, 'f', 2),
      QStringLiteral("%1 s").arg(c.prefill_seconds, 0, 'f', 2), ratio(c.dense_prefill_seconds, c.prefill_seconds), dense_how);
  row(tr("Answering (decode)"), QStringLiteral("%1 s").arg(c.dense_decode_seconds, 0, 'f', 2),
      QStringLiteral("%1 s").arg(c.decode_seconds, 0, 'f', 2), ratio(c.dense_decode_seconds, c.decode_seconds), dense_how);
  const auto m = app::money_json(c, prices_);
  if (m.is_object() && m.contains("dense") && m.contains("dsa")) {
    const double d = m["dense"].get<double>(), x = m["dsa"].get<double>();
    row(tr("Money"), QStringLiteral("%1 %2").arg(d, 0, 'f', 5).arg(QString::fromStdString(prices_.currency)),
        QStringLiteral("%1 %2").arg(x, 0, 'f', 5).arg(QString::fromStdString(prices_.currency)), ratio(d, x), tr("list prices"));
    table_->item(table_->rowCount() - 1, 0)
        ->setToolTip(tr("%1 vs %2 per-token list prices")
                         .arg(QString::fromStdString(prices_.dense_label), QString::fromStdString(prices_.dsa_label)));
  }
  if (s == 0 && cached_tokens_ > 0) {  // read in an earlier run: what this answer did not pay again
    CostReport r = cached_reading_;
    r.estimate_dense_times();
    row(tr("Read earlier, loaded"), QStringLiteral("%1 s").arg(r.dense_prefill_seconds, 0, 'f', 2),
        QStringLiteral("%1 s").arg(r.prefill_seconds, 0, 'f', 2), QString(),
        tr("%n document token(s) from the stored context, not read again", nullptr, cached_tokens_));
  }
  table_->resizeRowsToContents();
  int h = table_->horizontalHeader()->sizeHint().height() + 2 * table_->frameWidth() + 2;
  for (int r = 0; r < table_->rowCount(); ++r) h += table_->rowHeight(r);
  table_->setFixedHeight(h);
  note_->setText(
      c.mode == AttentionMode::kDense
          ? tr("This ran with dense attention; the DSA column is what the cost model counts for the same tokens.")
      : c.context_tokens <= c.top_k
          ? tr("The context (%1 tokens) fits within top-k (%2): attention is exactly dense here, so the saving is small.")
                .arg(c.context_tokens)
                .arg(c.top_k)
          : tr("DSA attended %1 of up to %2 earlier tokens per query.").arg(c.top_k).arg(c.context_tokens));
}

void CostPanel::fill_chart() {
  if (n_layer_ == 0) return;
  // Per generated token at context t, over all layers (the cost model's formulas).
  const double dense_per = 4.0 * n_head_ * head_dim_ * n_layer_;
  const double idx_per = 2.0 * n_head_ * rank_ * n_layer_;
  const auto dsa_at = [&](double t) { return (idx_per * t + dense_per * std::min<double>(t, top_k_)) / 1e6; };
  const int max_ctx = 131072;
  QList<QPointF> d, x;
  for (int t = 0; t <= max_ctx; t += 1024) {
    d.append({t / 1024.0, dense_per * t / 1e6});
    x.append({t / 1024.0, dsa_at(t)});
  }
  dense_series_->replace(d);
  dsa_series_->setName(tr("DSA (top-k %1)").arg(top_k_));
  dsa_series_->replace(x);
  y_axis_->setRange(0, dense_per * max_ctx / 1e6);
  here_series_->clear();
  if (doc_tokens_ > 0) {
    here_series_->setName(tr("This document (%1 tokens)").arg(doc_tokens_));
    here_series_->append(doc_tokens_ / 1024.0, dense_per * doc_tokens_ / 1e6);
    here_series_->append(doc_tokens_ / 1024.0, dsa_at(doc_tokens_));
  } else {
    here_series_->setName(tr("This document"));
  }
}

}  // namespace docdsa::gui
