// docdsa cache list|clear: the documents kept read for later questions (app/core/context_cache.h).
#include <cstdio>
#include <ctime>

#include "cli_common.h"
#include "docdsa/app/json_text.h"
#include "docdsa/app/context_cache.h"

namespace docdsa::cli {
namespace {

std::string when(int64_t t) {
  char b[32];
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  std::strftime(b, sizeof(b), "%Y-%m-%d %H:%M", &tm);
  return b;
}

int cmd_list(const std::string& budget_text) {
  auto budget = parse_cache_budget(budget_text);
  if (!budget.ok()) return report(budget.error());
  const ContextCache cache(ContextCache::default_dir(), *budget);
  const auto entries = cache.list();
  uint64_t total = 0;
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& e : entries) {
    total += e.bytes;
    // Metadata is read from disk: a field of the wrong type is shown empty, never thrown on.
    const auto it = e.meta.is_object() ? e.meta.find("document") : e.meta.end();
    const nlohmann::json doc = it != e.meta.end() ? *it : nlohmann::json::object();
    arr.push_back({{"key", e.key},
                   {"path", e.path},
                   {"bytes", e.bytes},
                   {"last_used", e.last_used},
                   {"document", app::json_string(doc, "path")},
                   {"title", app::json_string(doc, "title")},
                   {"content_hash", app::json_string(doc, "content_hash")},
                   {"model", app::json_string(e.meta, "model")},
                   {"range", app::json_string(e.meta, "range")},
                   {"attention", app::json_string(e.meta, "attention")},
                   {"tokens", app::json_int(e.meta, "tokens", 0)},
                   {"kv", app::json_string(e.meta, "kv")},
                   {"damaged", e.meta.empty()}});
  }
  if (globals().json) {
    print_json({{"dir", cache.dir()}, {"entries", arr}, {"total_bytes", total}, {"budget_bytes", cache.budget()}});
    return kOk;
  }
  std::printf("%s: %zu stored contexts, %s of %s\n", cache.dir().c_str(), entries.size(), format_bytes(total).c_str(),
              format_bytes(cache.budget()).c_str());
  for (const auto& j : arr) {
    const std::string name =
        j["title"].get<std::string>().empty() ? j["document"].get<std::string>() : j["title"].get<std::string>();
    std::printf("  %s  %9s  %7d tokens  %-5s %s  %s%s\n", when(j["last_used"]).c_str(), format_bytes(j["bytes"]).c_str(),
                j["tokens"].get<int>(), j["attention"].get<std::string>().c_str(), j["model"].get<std::string>().c_str(),
                name.c_str(), j["damaged"].get<bool>() ? " (damaged: removed when next used)" : "");
  }
  return kOk;
}

int cmd_clear() {
  const ContextCache cache;
  size_t n = 0;
  const uint64_t freed = cache.clear(&n);
  if (globals().json)
    print_json({{"dir", cache.dir()}, {"removed", n}, {"freed_bytes", freed}});
  else
    std::printf("removed %zu stored contexts (%s) from %s\n", n, format_bytes(freed).c_str(), cache.dir().c_str());
  return kOk;
}

}  // namespace

void register_cache(CLI::App& app) {
  CLI::App* cache = app.add_subcommand(
      "cache", "The documents kept read for later questions ($XDG_CACHE_HOME/docdsa/contexts): list or clear them");
  cache->require_subcommand(1);
  static std::string budget = app::cache_budget_text(app::kDefaultCacheBudget);
  CLI::App* list = cache->add_subcommand("list", "List the stored contexts, most recently used first, with their sizes");
  list->add_option("--cache-budget", budget, "Budget to report against")->capture_default_str();
  list->callback([] { globals().command = [] { return cmd_list(budget); }; });
  CLI::App* clear = cache->add_subcommand("clear", "Remove every stored context (documents are read again when next asked)");
  clear->callback([] { globals().command = [] { return cmd_clear(); }; });
}

}  // namespace docdsa::cli
