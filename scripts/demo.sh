#!/usr/bin/env bash
# Installs what is missing (Debian packages, the default model), builds, and runs the main
# jobs on the bundled demo folder: a batch summary of every document (summaries written next
# to a copy of their sources), then a question over a whole transcript with the answer's
# sources and the cost sparse attention saved.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_deps.sh"
"$ROOT/scripts/fetch_model.sh"
"$ROOT/scripts/build.sh"
DOCDSA="${DOCDSA_BUILD_DIR:-$ROOT/build}/app/cli/docdsa"
DEMO="$ROOT/resources/demo"
WORK="${DOCDSA_DEMO_DIR:-${TMPDIR:-/tmp}/docdsa-demo}"
mkdir -p "$WORK"
QUESTION="${1:-What is the case about, and what does Ms. Karlan argue?}"
echo
echo "== 1. Summarising the sample folder $DEMO (a PDF, a court transcript, a text)"
echo "==    into $WORK/summaries; a second run skips what is already summarised."
"$DOCDSA" summarize --db "$WORK/library.sqlite" --out "$WORK/summaries" "$DEMO" || true
echo
echo "== 2. Asking the transcript a question: answer, sources and cost"
"$DOCDSA" ask --db "$WORK/library.sqlite" -n 96 "$DEMO/bostock-v-clayton-county-opening.srt" "$QUESTION"
echo
echo "== The desktop app over the same documents: ${DOCDSA_BUILD_DIR:-$ROOT/build}/app/gui/docdsa-gui $DEMO"
