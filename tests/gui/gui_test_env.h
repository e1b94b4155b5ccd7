// Shared set-up for the widget tests: the offscreen platform, and a private XDG config, data
// and cache home per run so that the person's own settings and library are never touched.
#pragma once

#include <QTemporaryDir>
#include <QtGlobal>
#include <cstdlib>

namespace docdsa::gui::test {

// Call before constructing QApplication. The directory lives for the process.
inline void isolate_environment() {
  static QTemporaryDir home;
  qputenv("QT_QPA_PLATFORM", "offscreen");
  qputenv("XDG_CONFIG_HOME", (home.path() + "/config").toUtf8());
  qputenv("XDG_DATA_HOME", (home.path() + "/data").toUtf8());
  // The DSA indexer sidecar is the one thing worth sharing between runs (calibration takes
  // ~20 s): keep the caller's cache unless a test cache is named.
  if (const char* c = std::getenv("DOCDSA_TEST_CACHE"); c && *c) qputenv("XDG_CACHE_HOME", c);
  qputenv("XDG_RUNTIME_DIR", (home.path() + "/runtime").toUtf8());
  // No installed model is found (the tests name theirs): a real one's first load calibrates.
  qputenv("DOCDSA_MODEL_DIR", (home.path() + "/models").toUtf8());
}

}  // namespace docdsa::gui::test
