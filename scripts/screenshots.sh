#!/usr/bin/env bash
# Pictures of the desktop app for the README, taken under Xvfb (a real X server, the xcb
# platform) with the real default model and corpus documents, on a fresh temporary library:
#   docs/screenshots/library.png, answer.png, cost.png   — a Supreme Court argument transcript
#   docs/screenshots/pdf-answer.png                     — a scanned (OCR) PDF
# Usage: scripts/screenshots.sh [OUT_DIR]   (DOCDSA_CORPUS overrides ../shared/corpus)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(realpath -m "${1:-$ROOT/docs/screenshots}")"
CORPUS="$(realpath "${DOCDSA_CORPUS:-$ROOT/../shared/corpus}")"
"$ROOT/scripts/setup_deps.sh"
if ! command -v xvfb-run >/dev/null; then
  echo "screenshots: installing xvfb"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends xvfb xauth >/dev/null
fi
"$ROOT/scripts/fetch_model.sh"
"$ROOT/scripts/build.sh"
GUI="${DOCDSA_BUILD_DIR:-$ROOT/build}/app/gui/docdsa-gui"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# Private settings and library; the DSA indexer cache is shared (calibrated once per model).
export XDG_CONFIG_HOME="$WORK/config" XDG_DATA_HOME="$WORK/data"
mkdir -p "$OUT"
shot() { xvfb-run -a -s "-screen 0 1600x1000x24" "$GUI" --library "$WORK/library.sqlite" --screenshots "$OUT" "$@"; }
SRT="$CORPUS/transcripts/oyez-scotus/2019.17-1618.DERIVED.srt"
PDF="$CORPUS/pdf/scanned/pypdf__Seige_of_Vicksburg_Sample_OCR.pdf"
echo "screenshots: the transcript (first 20 minutes of the argument) ..."
shot --ask "What does Pamela Karlan argue?" --part 00:00:00-00:20:00 \
  "$SRT" "$PDF" "$CORPUS/transcripts/podcast/typeagent__Episode_53_AdrianTchaikovsky.txt" \
  "$CORPUS/pdf/text/tracemonkey-pldi09.pdf" "$CORPUS/pdf/malformed/ocrmypdf__invalid.pdf" \
  "$CORPUS/pdf/encrypted/pypdf__r2-user-password.pdf"
echo "screenshots: the PDF ..."
shot --shot-prefix pdf- --ask "Who commanded the Union army?" "$PDF"
rm -f "$OUT/pdf-library.png" "$OUT/pdf-cost.png"
ls -l "$OUT"
