#include "settings.h"

#include <QSettings>

#include <algorithm>

#include "docdsa/ingest/ocr.h"
#include "docdsa/storage/library.h"

namespace docdsa::gui {

GuiSettings GuiSettings::load() {
  QSettings s;
  GuiSettings g;
  g.model = s.value("model/path", g.model).toString();
  g.threads = s.value("model/threads", g.threads).toInt();
  g.device = s.value("model/device", g.device).toString();
  g.attention = s.value("attention/mode", g.attention).toString();
  g.top_k = s.value("attention/top_k", g.top_k).toInt();
  g.sinks = s.value("attention/sinks", g.sinks).toInt();
  g.window = s.value("attention/window", g.window).toInt();
  g.ctx = s.value("attention/context", g.ctx).toInt();
  g.max_answer = s.value("answers/max_tokens", g.max_answer).toInt();
  g.prices = s.value("cost/prices", g.prices).toString();
  g.library = s.value("library/path", g.library).toString();
  g.ocr = s.value("ocr/enabled", g.ocr).toBool();
  g.ocr_languages = s.value("ocr/languages", g.ocr_languages).toString();
  g.cache_budget_gb = s.value("cache/budget_gb", g.cache_budget_gb).toInt();
  return g;
}

void GuiSettings::save() const {
  QSettings s;
  s.setValue("model/path", model);
  s.setValue("model/threads", threads);
  s.setValue("model/device", device);
  s.setValue("attention/mode", attention);
  s.setValue("attention/top_k", top_k);
  s.setValue("attention/sinks", sinks);
  s.setValue("attention/window", window);
  s.setValue("attention/context", ctx);
  s.setValue("answers/max_tokens", max_answer);
  s.setValue("cost/prices", prices);
  s.setValue("library/path", library);
  s.setValue("ocr/enabled", ocr);
  s.setValue("ocr/languages", ocr_languages);
  s.setValue("cache/budget_gb", cache_budget_gb);
}

QString GuiSettings::library_path() const {
  return library.isEmpty() ? QString::fromStdString(storage::default_library_path()) : library;
}

app::AttentionOptions GuiSettings::attention_options() const {
  app::AttentionOptions o;
  o.mode = attention == QLatin1String("dense") ? "dense" : "dsa";
  o.dsa.top_k = top_k;
  o.dsa.sinks = sinks;
  o.dsa.window = window;
  o.device = device == QLatin1String("cpu") || device == QLatin1String("cuda") ? device.toStdString() : "auto";
  return o;
}

app::DocSessionOptions GuiSettings::session_options() const {
  app::DocSessionOptions o;
  o.attn = attention_options();
  o.max_answer = max_answer;
  o.ctx_limit = ctx;
  o.threads = threads;
  o.cache_budget = static_cast<uint64_t>(std::max(0, cache_budget_gb)) * 1000 * 1000 * 1000;
  return o;
}

app::SummaryOptions GuiSettings::summary_options() const {
  app::SummaryOptions o;
  o.attn = attention_options();
  o.ctx = ctx;
  o.threads = threads;
  return o;
}

QString GuiSettings::validate() const {
  DsaParams p;
  p.top_k = top_k;
  p.sinks = sinks;
  p.window = window;
  if (auto st = docdsa::validate(p); !st.ok()) return QString::fromStdString(st.error().message);
  if (ctx < 1024) return QObject::tr("The context length must be at least 1024 tokens.");
  if (max_answer < 1) return QObject::tr("The longest answer must be at least one token.");
  if (ocr && !ocr_languages.trimmed().isEmpty())  // a missing language names its package
    if (auto langs = ingest::check_ocr_languages(ocr_languages.trimmed().toStdString()); !langs.ok())
      return QString::fromStdString(langs.error().message);
  return {};
}

}  // namespace docdsa::gui
