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
for f in lighthouse.txt pysrt__capability_tester.srt notes.md; do
  [ -s "$WORK/out/$f.summary.md" ] || fail "no sidecar for $f"
  grep -q '^## Sources' "$WORK/out/$f.summary.md" || fail "sidecar for $f has no sources"
done
[ "$(sqlite3 "$DB" 'SELECT COUNT(*) FROM summaries')" = 3 ] || fail "summary rows after run 1"

# 2. A rerun skips everything unchanged.
set +e; run "$WORK/in" > "$WORK/r2.json"; rc=$?; set -e
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['skipped']==3 and j['done']==0, j" "$WORK/r2.json" || fail "rerun did not skip"

# 3. --force in the background, killed with SIGKILL once one new summary is committed.
rm -f "$WORK/out/"*.summary.md
run --force "$WORK/in" > /dev/null 2>&1 &
pid=$!
base=$(sqlite3 "$DB" 'SELECT MAX(id) FROM summaries')
for i in $(seq 1 600); do
  n=$(sqlite3 "$DB" "SELECT COUNT(*) FROM summaries WHERE id > $base" 2>/dev/null || echo 0)
  [ "$n" -ge 1 ] && break
  sleep 0.2
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
[ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok ] || fail "library damaged by the kill"
ls "$WORK/out" | grep -q '\.tmp$' && fail "a half-written sidecar was left under its final name or as .tmp"

# 4. The rerun completes: every document has exactly one summary and one sidecar.
set +e; run "$WORK/in" > "$WORK/r3.json"; rc=$?; set -e
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['done']+j['skipped']==3 and j['failed']==1, j" "$WORK/r3.json" || fail "resume report"
[ "$(sqlite3 "$DB" 'SELECT COUNT(*) FROM summaries')" = 3 ] || fail "duplicate or missing summary rows after resume"
[ "$(sqlite3 "$DB" 'SELECT COUNT(DISTINCT doc_id) FROM summaries')" = 3 ] || fail "summaries not one per document"
for f in lighthouse.txt pysrt__capability_tester.srt notes.md; do
  [ -s "$WORK/out/$f.summary.md" ] || fail "sidecar for $f missing after resume"
done
echo "summarize resume: ok"
