#!/bin/sh
# A batch split into 3 shards, each into its own library, then merged, against one run of the
# whole batch: the same sidecar files byte for byte (greedy decoding), the same library contents,
# the bad file reported by the one shard that owns it (exit status 1), a shard killed with
# SIGKILL and rerun alone resuming where it stopped, nothing duplicated after the merge, and a
# second merge changing nothing. No scheduler: scripts/slurm_check.sh runs the same under Slurm.
# Usage: summarize_shards.sh DOCDSA MODEL SOURCE_DIR CORPUS WORKDIR
set -eu
DOCDSA=$1 MODEL=$2 SRC=$3 CORPUS=$4 WORK=$5
N=3
rm -rf "$WORK"; mkdir -p "$WORK/in/sub" "$WORK/in/hearings"
cp "$SRC/resources/samples/lighthouse.txt" "$WORK/in/"
cp "$CORPUS/transcripts/edge-cases/srt/go-astisub__example-in-styled.srt" "$CORPUS/transcripts/edge-cases/srt/pysrt__bom-utf-8.srt" "$WORK/in/hearings/"
cp "$CORPUS/transcripts/edge-cases/srt/webvtt-py__sample.srt" "$WORK/in/"
cp "$CORPUS/pdf/malformed/ocrmypdf__invalid.pdf" "$WORK/in/broken.pdf"
printf 'Minutes of the harbour board.\nThe board met on Tuesday and agreed to repair the east pier before winter.\n' > "$WORK/in/sub/minutes.md"
printf 'Notice to mariners.\nThe north light is out of service for painting until Friday; use the fog signal.\n' > "$WORK/in/sub/notice.txt"
GOOD=6
run() { db=$1; shift; "$DOCDSA" summarize --json --model "$MODEL" --db "$db" --out "$@" -n 32 "$WORK/in"; }
fail() { echo "FAIL: $*"; exit 1; }
q() { sqlite3 "$1" "$2"; }

# 1. One machine, the whole batch.
set +e; run "$WORK/single.sqlite" "$WORK/out-single" > "$WORK/single.json"; rc=$?; set -e
[ $rc -eq 1 ] || fail "single run exit $rc (expected 1: broken.pdf)"

# 2. Which shard owns what (a dry run lists it without summarising): pick the shard with the
#    most documents (>= 2 of 6 by pigeonhole) to be killed partway.
victim=0 most=0
k=0; while [ $k -lt $N ]; do
  set +e; "$DOCDSA" summarize --json --dry-run --model "$MODEL" --db "$WORK/dry.sqlite" --shard $k/$N "$WORK/in" > "$WORK/dry$k.json"; set -e
  n=$(python3 -c "import json,sys; print(sum(f['status']=='would_summarize' for f in json.load(open(sys.argv[1]))['files']))" "$WORK/dry$k.json")
  [ "$n" -gt $most ] && most=$n victim=$k
  k=$((k+1))
done
[ $most -ge 2 ] || fail "no shard has two documents"

# 3. The victim shard first, killed with SIGKILL at its first finished summary (its "done" line
#    is printed once the summary is committed and its sidecar written).
rm -f "$WORK/progress"; mkfifo "$WORK/progress"
"$DOCDSA" summarize --model "$MODEL" --db "$WORK/shard$victim.sqlite" --out "$WORK/out-shards" -n 32 --shard $victim/$N "$WORK/in" \
  > "$WORK/progress" 2>/dev/null &
pid=$!
killed=0
while IFS= read -r line; do
  case "$line" in
    done*) kill -9 $pid; killed=1; break ;;
  esac
done < "$WORK/progress"
[ $killed -eq 1 ] || fail "shard $victim ended without a finished summary"
wait $pid 2>/dev/null || true
[ "$(q "$WORK/shard$victim.sqlite" 'SELECT COUNT(*) FROM summaries')" = 1 ] || fail "the killed shard should hold one summary"

# 4. Every shard (the victim rerun alone resumes): the bad file is reported by exactly one shard.
failed=0 done_total=0 skipped_total=0
k=0; while [ $k -lt $N ]; do
  set +e; run "$WORK/shard$k.sqlite" "$WORK/out-shards" --shard $k/$N > "$WORK/shard$k.json"; rc=$?; set -e
  python3 - "$WORK/shard$k.json" $rc $k $N <<'PY' || fail "shard $k report"
import json, sys
j = json.load(open(sys.argv[1])); rc = int(sys.argv[2])
assert j["shard"]["index"] == int(sys.argv[3]) and j["shard"]["count"] == int(sys.argv[4]), j["shard"]
bad = [f for f in j["files"] if f["status"] == "failed"]
assert rc == (1 if bad else 0), (rc, bad)
assert all(f["path"].endswith("broken.pdf") and "broken.pdf" in f["error"] for f in bad), bad
PY
  f=$(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(j['failed'], j['done'], j['skipped'])" "$WORK/shard$k.json")
  set -- $f; failed=$((failed+$1)) done_total=$((done_total+$2)) skipped_total=$((skipped_total+$3))
  k=$((k+1))
done
[ $failed -eq 1 ] || fail "broken.pdf reported $failed times (expected once)"
[ $skipped_total -eq 1 ] || fail "the rerun of shard $victim skipped $skipped_total (expected the 1 it had finished)"
[ $((done_total+skipped_total)) -eq $GOOD ] || fail "the shards summarised $done_total + $skipped_total of $GOOD"

# 5. The sidecars: the same files, byte for byte, as the one-machine run.
diff -r "$WORK/out-single" "$WORK/out-shards" || fail "sidecars differ from the single run"
[ "$(find "$WORK/out-shards" -name '*.summary.md' | wc -l)" -eq $GOOD ] || fail "sidecar count"
if find "$WORK/out-shards" -name '*.tmp' | grep -q .; then fail "a temporary sidecar was left behind"; fi

# 6. Merge, then merge again: the second changes nothing (the whole dump is the same).
"$DOCDSA" library merge --json "$WORK/merged.sqlite" $(k=0; while [ $k -lt $N ]; do printf '%s ' "$WORK/shard$k.sqlite"; k=$((k+1)); done) > "$WORK/merge1.json"
sqlite3 "$WORK/merged.sqlite" .dump > "$WORK/dump1.sql"
"$DOCDSA" library merge --json "$WORK/merged.sqlite" "$WORK"/shard*.sqlite > "$WORK/merge2.json"
sqlite3 "$WORK/merged.sqlite" .dump > "$WORK/dump2.sql"
cmp -s "$WORK/dump1.sql" "$WORK/dump2.sql" || fail "a second merge changed the library"
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['documents_added']==0 and j['runs']==0 and j['summaries']==0, j" "$WORK/merge2.json" || fail "second merge report"

# 7. The same library contents as the single run; every row once; costs add up.
contents() {  # documents and their summaries, without ids and times
  sqlite3 "$1" "SELECT d.path, d.content_hash, d.kind, d.title, d.n_segments, d.n_tokens, (SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.id),
    s.content_hash, s.text, s.sources, r.kind, r.model, r.attention, json_extract(r.cost_report, '$.tokens.prompt'), json_extract(r.cost_report, '$.tokens.decoded')
    FROM documents d LEFT JOIN summaries s ON s.doc_id = d.id LEFT JOIN runs r ON r.id = s.run_id ORDER BY d.path"
  sqlite3 "$1" "SELECT d.path, s.idx, s.page, s.start_ms, s.end_ms, s.speaker, s.text FROM segments s JOIN documents d ON d.id = s.doc_id ORDER BY d.path, s.idx"
  sqlite3 "$1" "SELECT d.path, c.idx, c.text, c.n_tokens, c.page_first, c.start_ms, c.char_begin, c.char_end FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY d.path, c.idx"
}
contents "$WORK/single.sqlite" > "$WORK/single.txt"
contents "$WORK/merged.sqlite" > "$WORK/merged.txt"
diff "$WORK/single.txt" "$WORK/merged.txt" || fail "library contents differ from the single run"
[ "$(q "$WORK/merged.sqlite" 'SELECT COUNT(*) FROM documents')" = $GOOD ] || fail "documents after merge"
[ "$(q "$WORK/merged.sqlite" 'SELECT COUNT(*) || "/" || COUNT(DISTINCT doc_id) FROM summaries')" = "$GOOD/$GOOD" ] || fail "summaries duplicated after merge"
[ "$(q "$WORK/merged.sqlite" 'PRAGMA integrity_check')" = ok ] || fail "merged library integrity"
sum() { q "$1" "SELECT COUNT(*) || ' ' || TOTAL(json_extract(cost_report,'$.tokens.prompt')) || ' ' || TOTAL(json_extract(cost_report,'$.tokens.decoded')) || ' ' || printf('%.6f', TOTAL(json_extract(cost_report,'$.seconds.prefill'))) FROM runs"; }
shards_sum=$(for f in "$WORK"/shard*.sqlite; do sum "$f"; done | awk '{n+=$1; p+=$2; d+=$3; s+=$4} END {printf "%d %.1f %.1f %.3f\n", n, p, d, s}')
merged_sum=$(sum "$WORK/merged.sqlite" | awk '{printf "%d %.1f %.1f %.3f\n", $1, $2, $3, $4}')
[ "$shards_sum" = "$merged_sum" ] || fail "merged run costs ($merged_sum) are not the shards' sum ($shards_sum)"
single_sum=$(sum "$WORK/single.sqlite" | awk '{printf "%d %.1f %.1f\n", $1, $2, $3}')
[ "$single_sum" = "$(echo "$merged_sum" | awk '{printf "%d %.1f %.1f\n", $1, $2, $3}')" ] || fail "token totals differ from the single run"
echo "summarize shards: ok ($N shards, shard $victim killed and resumed; runs/prompt/decoded/prefill-s: $merged_sum)"
