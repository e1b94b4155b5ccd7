#!/usr/bin/env bash
# Makes a scan-like PDF from pages of a text PDF: each page rendered at 300 dpi in grey and
# stored as an image only (no fonts, no text layer), as a flatbed scanner would, so that
# `docdsa bench --ingest` can time OCR on ordinary text pages, not only on the corpus's scans.
# Usage: scripts/make_scan.sh IN.pdf OUT.pdf [FIRST LAST]   (default: every page)
# Example: scripts/make_scan.sh ../shared/corpus/pdf/text/gnu-coding-standards.pdf /tmp/scan.pdf 10 19
set -euo pipefail
if [ $# -lt 2 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -ge 2 ] || exit 2
  exit 0
fi
in=$1 out=$2
range=()
[ $# -ge 4 ] && range=(-f "$3" -l "$4")
"$(dirname "$0")/setup_deps.sh" >/dev/null  # pdftoppm (poppler-utils) and img2pdf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# TIFF keeps the grey and the 300 dpi (this pdftoppm writes -gray PNGs as RGB, PGM without a
# resolution); libtiff's note on the Deflate codec's identifier is noise.
pdftoppm -r 300 -gray -tiff -tiffcompression deflate "${range[@]}" "$in" "$tmp/page" 2> >(grep -v TIFFWriteDirectorySec >&2)
img2pdf --output "$out" "$tmp"/page-*.tif
echo "$out: $(ls "$tmp"/page-*.tif | wc -l) pages, 300 dpi grey, image only"
