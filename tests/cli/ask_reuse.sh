#!/bin/sh
# Read once, ask any time later: with a fresh cache folder, `docdsa ask` about a ~7K-token
# document reads it and keeps its caches; a second `docdsa ask` (a new process, another
# question) loads them and prefills only the question (>= 90% of its prompt reused). Then
# `cache list` shows the entry, a damaged entry is ignored with a warning and rebuilt, and
# `cache clear` empties the folder.
# Usage: ask_reuse.sh DOCDSA MODEL CORPUS WORKDIR [INDEXER_CACHE]
set -eu
DOCDSA=$1 MODEL=$2 CORPUS=$3 WORK=$4 IXC=${5:-}
rm -rf "$WORK"; mkdir -p "$WORK/xdg/docdsa"
export XDG_CACHE_HOME="$WORK/xdg"
# The indexer sidecars are not what is tested: reuse calibrated ones when the suite has them.
if [ -n "$IXC" ] && [ -d "$IXC/docdsa/indexers" ]; then cp -r "$IXC/docdsa/indexers" "$WORK/xdg/docdsa/"; fi
DOC="$WORK/gh.txt"
cp "$CORPUS/haystack/PaulGrahamEssays/gh.txt" "$DOC"
ask() { "$DOCDSA" ask --json --model "$MODEL" --db "$WORK/lib.sqlite" "$DOC" -n 8 "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

ask "What does the essay say about hackers?" > "$WORK/a1.json" || fail "first ask"
ask "Who are the good programmers, according to the author?" > "$WORK/a2.json" 2> "$WORK/a2.err" || fail "second ask"
python3 - "$WORK/a1.json" "$WORK/a2.json" <<'PY' || fail "reuse"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
x, y = a["answers"][0], b["answers"][0]
assert a["document_tokens"] > 6500, a["document_tokens"]
assert a["from_cache"] is False and x["cached_tokens"] == 0 and x["prefilled_tokens"] == x["prompt_tokens"], x
assert b["from_cache"] is True, b
share = y["reused_tokens"] / y["prompt_tokens"]
assert share >= 0.9 and y["cached_tokens"] == b["document_tokens"], (share, y)
assert y["prefilled_tokens"] == y["prompt_tokens"] - y["reused_tokens"], y
# The cost report says what reading the cached tokens cost when they were read.
assert y["cached_reading"]["tokens"]["prompt"] == b["document_tokens"], y["cached_reading"]
assert y["cached_reading"]["seconds"]["prefill"] > 0
print("reused %.1f%% of %d prompt tokens; context loaded in %.2f s, question prefilled in %.2f s (first ask read for %.2f s)"
      % (100 * share, y["prompt_tokens"], b["context_load_seconds"], y["prefill_seconds"], x["prefill_seconds"]))
PY
"$DOCDSA" cache list --json > "$WORK/list.json" || fail "cache list"
python3 - "$WORK/list.json" <<'PY' || fail "cache list contents"
import json, sys
j = json.load(open(sys.argv[1]))
assert len(j["entries"]) == 1 and j["entries"][0]["tokens"] > 6500 and j["entries"][0]["document"].endswith("gh.txt"), j
assert j["budget_bytes"] == 20 * 10**9 and j["total_bytes"] == j["entries"][0]["bytes"], j
PY
# A damaged entry (cut short): ignored with a warning naming it, the document read again, stored anew.
entry=$(ls "$WORK"/xdg/docdsa/contexts/*.ctx)
size=$(wc -c < "$entry")
truncate -s $((size / 2)) "$entry"
ask "What is the essay about?" > "$WORK/a3.json" 2> "$WORK/a3.err" || fail "ask after damage"
grep -q "stored context ignored" "$WORK/a3.err" || fail "no warning for the damaged entry: $(cat "$WORK/a3.err")"
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['from_cache'] is False" "$WORK/a3.json" || fail "damaged entry used"
# Rebuilt whole (its metadata holds the new reading time, so the size may differ by a few bytes).
[ -f "$entry" ] && [ $(( $(wc -c < "$entry") - size )) -lt 64 ] && [ $(( size - $(wc -c < "$entry") )) -lt 64 ] ||
  fail "entry not rebuilt"
"$DOCDSA" cache clear --json | grep -q '"removed": 1' || fail "cache clear"
[ -z "$(ls "$WORK"/xdg/docdsa/contexts/)" ] || fail "cache folder not empty after clear"
echo "ask reuse: ok"
