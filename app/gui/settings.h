// The desktop app's settings, kept with QSettings (~/.config/DocDSA/docdsa.conf, XDG aware):
// the model file, threads, attention mode and its parameters, context length, price table and
// library location. One struct so that the settings dialog, the worker and the tests agree.
#pragma once

#include <QString>

#include "docdsa/app/doc_session.h"

namespace docdsa::gui {

struct GuiSettings {
  QString model;    // empty: $DOCDSA_MODEL, then the downloaded default model
  int threads = 0;  // 0: all cores
  QString attention = QStringLiteral("dsa");
  int top_k = 2048, sinks = 64, window = 512;
  int ctx = 131072;      // largest context in tokens
  int max_answer = 256;  // longest answer in tokens
  QString prices;        // empty: $XDG_CONFIG_HOME/docdsa/prices.json, else the bundled table
  QString library;       // empty: $XDG_DATA_HOME/docdsa/library.sqlite

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
