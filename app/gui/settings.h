// The desktop app's settings, kept with QSettings (~/.config/DocDSA/docdsa.conf, XDG aware):
// the model file, threads, attention mode and its parameters, context length, price table and
// library location. One struct so that the settings dialog, the worker and the tests agree.
#pragma once

#include <QString>

#include "docdsa/app/doc_session.h"

namespace docdsa::gui {

struct GuiSettings {
  QString model;    // empty: $DOCDSA_MODEL, then the best installed model; or a short name or a path
  int threads = 0;  // 0: all cores
  QString device = QStringLiteral("auto");  // auto, cpu or cuda (app/core device.h)
  QString attention = QStringLiteral("dsa");
  int top_k = 2048, sinks = 64, window = 512;
  int ctx = 131072;      // largest context in tokens
  int max_answer = 256;  // longest answer in tokens
  QString prices;        // empty: $XDG_CONFIG_HOME/docdsa/prices.json, else the bundled table
  QString library;       // empty: $XDG_DATA_HOME/docdsa/library.sqlite
  bool ocr = true;        // read scanned PDF pages (no text layer) with OCR
  QString ocr_languages;  // Tesseract codes joined by '+'; empty: English and every installed language
  int cache_budget_gb = 20;  // disk for documents kept read for later questions (0: off)

  static GuiSettings load();
  void save() const;
  QString library_path() const;
  app::AttentionOptions attention_options() const;
  app::DocSessionOptions session_options() const;
  app::SummaryOptions summary_options() const;
  // Empty when valid, else what is wrong (for the settings dialog).
  QString validate() const;
};

}  // namespace docdsa::gui
