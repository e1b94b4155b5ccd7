#!/bin/sh
# Summarize a folder with a broken file, check the report, the sidecars and the rows; kill a
# second run with SIGKILL partway and check that a rerun finishes the rest with no duplicate,
# broken or half-written results. Usage: summarize_resume.sh DOCDSA MODEL SOURCE_DIR CORPUS WORKDIR
set -eu
DOCDSA=$1 MODEL=$2 SRC=$3 CORPUS=$4 WORK=$5
rm -rf "$WORK"; mkdir -p "$WORK/in/sub" "$WORK/out"
cp "$SRC/resources/samples/lighthouse.txt" "$WORK/in/"
cp "$CORPUS/transcripts/edge-cases/srt/pysrt__capability_tester.srt" "$WORK/in/sub/"
cp "$CORPUS/pdf/malformed/ocrmypdf__invalid.pdf" "$WORK/in/broken.pdf"
printf 'not a subtitle file at all\n' > "$WORK/in/sub/notes.md"
DB="$WORK/lib.sqlite"
run() { "$DOCDSA" summarize --json --model "$MODEL" --db "$DB" --out "$WORK/out" -n 48 "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

# 1. First run: three documents summarised, the broken PDF reported, exit status 1.
set +e; run "$WORK/in" > "$WORK/r1.json"; rc=$?; set -e
[ $rc -eq 1 ] || fail "first run exit $rc (expected 1: one file failed)"
python3 - "$WORK/r1.json" <<'PY' || fail "first report"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["done"] == 3 and j["failed"] == 1 and j["skipped"] == 0, j
bad = [f for f in j["files"] if f["status"] == "failed"]
assert bad[0]["path"].endswith("broken.pdf") and "broken.pdf" in bad[0]["error"], bad
PY
for f in lighthouse.txt sub/pysrt__capability_tester.srt sub/notes.md; do  # the layout of in/, mirrored
  [ -s "$WORK/out/$f.summary.md" ] || fail "no sidecar for $f"
  grep -q '^## Sources' "$WORK/out/$f.summary.md" || fail "sidecar for $f has no sources"
done
[ "$(sqlite3 "$DB" 'SELECT COUNT(*) FROM summaries')" = 3 ] || fail "summary rows after run 1"

# 2. A rerun skips everything unchanged.
set +e; run "$WORK/in" > "$WORK/r2.json"; rc=$?; set -e
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['skipped']==3 and j['done']==0, j" "$WORK/r2.json" || fail "rerun did not skip"

# 3. A fresh library: a run in the background, killed with SIGKILL on the event itself: its
#    first "done" line, printed once that summary is committed and its sidecar written (no
#    polling, no timing window: the other two documents take seconds each to summarise).
DB="$WORK/lib2.sqlite"
rm -rf "$WORK/out"; mkdir -p "$WORK/out"
rm -f "$WORK/progress"; mkfifo "$WORK/progress"
"$DOCDSA" summarize --model "$MODEL" --db "$DB" --out "$WORK/out" -n 48 "$WORK/in" > "$WORK/progress" 2>/dev/null &
pid=$!  # docdsa itself, so SIGKILL reaches it
killed=0
while IFS= read -r line; do
  case "$line" in
    done*) kill -0 $pid 2>/dev/null || fail "the run finished before it could be killed"
           kill -9 $pid; killed=1; break ;;
  esac
done < "$WORK/progress"
[ $killed -eq 1 ] || fail "the run ended without reporting a finished summary"
wait $pid 2>/dev/null || true
n=$(sqlite3 "$DB" "SELECT COUNT(*) FROM summaries")
[ "$n" -ge 1 ] && [ "$n" -lt 3 ] || fail "expected a partial run, found $n summaries"
[ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok ] || fail "library damaged by the kill"

# 4. The rerun skips what was finished, summarises the rest: one summary and one sidecar per
#    document, no temporary files left.
set +e; run "$WORK/in" > "$WORK/r3.json"; rc=$?; set -e
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['done']>=1 and j['skipped']>=1 and j['done']+j['skipped']==3 and j['failed']==1, j" "$WORK/r3.json" || fail "resume report"
[ "$(sqlite3 "$DB" 'SELECT COUNT(*) FROM summaries')" = 3 ] || fail "duplicate or missing summary rows after resume"
[ "$(sqlite3 "$DB" 'SELECT COUNT(DISTINCT doc_id) FROM summaries')" = 3 ] || fail "summaries not one per document"
for f in lighthouse.txt sub/pysrt__capability_tester.srt sub/notes.md; do
  [ -s "$WORK/out/$f.summary.md" ] || fail "sidecar for $f missing after resume"
done
if find "$WORK/out" -name '*.tmp' | grep -q .; then fail "a temporary sidecar was left behind"; fi
echo "summarize resume: ok"
