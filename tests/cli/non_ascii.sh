#!/bin/sh
# Documents that are not ASCII (French, Russian, Chinese, emoji with curly quotes) through
# every command that shows text: ingest, list, show, search, ask, chat, summarize, in text and
# --json. Each run must exit 0 and print valid UTF-8 (JSON checked against the schemas).
# The French line is 34 bytes long, so a cut at byte 160 (source snippets) or 80 (titles)
# lands inside a character. Two files share the name notes.txt: each gets its own sidecar.
# Usage: non_ascii.sh DOCDSA MODEL SCHEMA_DIR WORKDIR
set -eu
DOCDSA=$1 MODEL=$2 SCHEMAS=$3 WORK=$4
rm -rf "$WORK"; mkdir -p "$WORK/docs/fr" "$WORK/docs/more" "$WORK/out"
DB="$WORK/lib.sqlite"
fail() { echo "FAIL: $*"; exit 1; }
rep() { i=0; while [ $i -lt "$2" ]; do printf '%s' "$1"; i=$((i + 1)); done; }
{ rep 'Élève é à ç ü ß — «ñ» ' 12; printf '\n\n'; rep 'Élève é à ç ü ß — «ñ» ' 12; printf '\n'; } > "$WORK/docs/fr/notes.txt"
{ rep 'Съешь же ещё этих мягких французских булок, да выпей чаю. ' 6; printf '\n'; } > "$WORK/docs/more/notes.txt"
{ rep '我能吞下玻璃而不伤身体。灯塔守护者每天晚上点亮灯光。' 8; printf '\n'; } > "$WORK/docs/more/zh.txt"
{ rep '🙂🚀 “Hello,” she said — it’s late 👍🏽🎉 ' 8; printf '\n'; } > "$WORK/docs/more/emoji.md"
# Strict UTF-8 (and JSON when asked): python refuses invalid bytes.
utf8() { python3 -c "import sys; open(sys.argv[1], encoding='utf-8', errors='strict').read()" "$1" || fail "$2: not valid UTF-8"; }
json() { python3 -c "import json,sys; json.load(open(sys.argv[1], encoding='utf-8', errors='strict'))" "$1" || fail "$2: not valid JSON"; }
run() {  # NAME COMMAND...: exit 0 and valid UTF-8 output
  name=$1; shift
  set +e; "$@" > "$WORK/$name.out" 2> "$WORK/$name.err"; rc=$?; set -e
  [ $rc -eq 0 ] || { tail -5 "$WORK/$name.err"; fail "$name: exit $rc"; }
  utf8 "$WORK/$name.out" "$name"
}
D="$DOCDSA"; M="--model $MODEL"

run ingest "$D" ingest --json --db "$DB" $M "$WORK/docs"; json "$WORK/ingest.out" ingest
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['added']==4 and j['failed']==0, j" "$WORK/ingest.out" || fail "ingest report"
run list "$D" list --db "$DB"
run list_json "$D" list --json --db "$DB"; json "$WORK/list_json.out" "list --json"
FR=$(python3 -c "import json,sys; print([d['id'] for d in json.load(open(sys.argv[1]))['documents'] if d['path'].endswith('fr/notes.txt')][0])" "$WORK/list_json.out")
run show "$D" show --db "$DB" "$FR"
run show_json "$D" show --json --text --db "$DB" "$FR"; json "$WORK/show_json.out" "show --json"
run search "$D" search --db "$DB" 'Élève'
run search_json "$D" search --json --db "$DB" 'булок'; json "$WORK/search_json.out" "search --json"
grep -q 'булок' "$WORK/search_json.out" || fail "search found no Russian text"

run ask_fr_json python3 "$SCHEMAS/validate_json.py" "$SCHEMAS/ask.schema.json" -- \
  "$D" ask --json --db "$DB" $M -n 24 "$WORK/docs/fr/notes.txt" "Qu'est-ce que « Élève » ?"
run ask_ru "$D" ask --db "$DB" $M -n 24 "$WORK/docs/more/notes.txt" 'О чём этот текст?'
run ask_emoji_json python3 "$SCHEMAS/validate_json.py" "$SCHEMAS/ask.schema.json" -- \
  "$D" ask --json --db "$DB" $M -n 32 "$WORK/docs/more/emoji.md" 'What did she say — and when?'
printf '这是什么？\n' > "$WORK/q.txt"
set +e; "$D" chat --db "$DB" $M -n 16 "$WORK/docs/more/zh.txt" < "$WORK/q.txt" > "$WORK/chat.out" 2> "$WORK/chat.err"; rc=$?; set -e
[ $rc -eq 0 ] || fail "chat: exit $rc"
utf8 "$WORK/chat.out" chat
grep -q 'A: ' "$WORK/chat.out" || fail "chat gave no answer"

run sum_text "$D" summarize --force --db "$DB" $M -n 24 "$WORK/docs/more/zh.txt"
run sum_json python3 "$SCHEMAS/validate_json.py" "$SCHEMAS/summarize.schema.json" --check "j['done'] == 4" -- \
  "$D" summarize --json --force --db "$DB" $M -n 24 --out "$WORK/out" "$WORK/docs"
for f in fr/notes.txt more/notes.txt more/zh.txt more/emoji.md; do
  [ -s "$WORK/out/$f.summary.md" ] || fail "no sidecar $f.summary.md"
  utf8 "$WORK/out/$f.summary.md" "sidecar $f"
  grep -q "^Source: .*/$f\$" "$WORK/out/$f.summary.md" || fail "sidecar $f.summary.md is not $f's"
done
# A rerun skips everything; a sidecar that went missing is written again from the library.
rm "$WORK/out/more/notes.txt.summary.md"
run sum_again python3 "$SCHEMAS/validate_json.py" "$SCHEMAS/summarize.schema.json" --check "j['skipped'] == 4" -- \
  "$D" summarize --json --db "$DB" $M -n 24 --out "$WORK/out" "$WORK/docs"
grep -q '^Source: .*/more/notes.txt$' "$WORK/out/more/notes.txt.summary.md" || fail "missing sidecar not rewritten"
if find "$WORK/out" -name '*.tmp' | grep -q .; then fail "a temporary sidecar was left behind"; fi
echo "non-ascii: ok"
