#!/usr/bin/env bash
# Installs what is missing (Debian packages, both models), builds, calibrates each model's
# indexer once, and runs the main jobs on the bundled demo folder: a batch summary of every
# document (summaries written next to a copy of their sources), then a question over a whole
# transcript, asked with the better model, with the answer's sources and the cost sparse
# attention saved.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_deps.sh"
# Both models; offline or short of space, the demo goes on with what is installed.
"$ROOT/scripts/fetch_model.sh" all || echo "demo: going on with the models already installed"
"$ROOT/scripts/build.sh"
DOCDSA="${DOCDSA_BUILD_DIR:-$ROOT/build}/app/cli/docdsa"
echo
echo "== 0. The models, and their DSA indexers (calibrated once per model, with a progress bar)"
"$DOCDSA" models
for m in $("$DOCDSA" models --json | python3 -c 'import json, sys; print(*[m["name"] for m in json.load(sys.stdin)["models"] if m["installed"] and "alias" in m])'); do
  "$DOCDSA" calibrate --model "$m"
done
DEMO="$ROOT/resources/demo"
WORK="${DOCDSA_DEMO_DIR:-${TMPDIR:-/tmp}/docdsa-demo}"
mkdir -p "$WORK"
QUESTION="${1:-What is the case about, and what does Ms. Karlan argue?}"
echo
echo "== 1. Summarising the sample folder $DEMO (a PDF, a court transcript, a text)"
echo "==    into $WORK/summaries; a second run skips what is already summarised."
echo "==    With the default, best installed model (qwen2.5-coder-1.5b once fetched; --model small is faster, rougher)."
"$DOCDSA" summarize --db "$WORK/library.sqlite" --out "$WORK/summaries" "$DEMO" || true
echo
echo "== 2. Asking the transcript a question with the default, best installed model"
echo "==    (qwen2.5-coder-1.5b once fetched): answer, sources and cost"
"$DOCDSA" ask --db "$WORK/library.sqlite" -n 96 "$DEMO/bostock-v-clayton-county-opening.srt" "$QUESTION"
echo
echo "== The desktop app over the same documents: ${DOCDSA_BUILD_DIR:-$ROOT/build}/app/gui/docdsa-gui $DEMO"
