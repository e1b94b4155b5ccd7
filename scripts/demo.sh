#!/usr/bin/env bash
# Installs what is missing (Debian packages, the default model), builds, and runs the main
# job on a bundled sample: the whole document goes to the local model with a question, and
# the answer streams back.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_deps.sh"
"$ROOT/scripts/fetch_model.sh"
"$ROOT/scripts/build.sh"
DOCDSA="${DOCDSA_BUILD_DIR:-$ROOT/build}/app/cli/docdsa"
SAMPLE="$ROOT/resources/samples/lighthouse.txt"
QUESTION="${1:-Who was the last keeper of the lighthouse, and when did she leave?}"
echo
echo "== Document: $SAMPLE"
echo "== Question: $QUESTION"
echo "== Answer:"
"$DOCDSA" generate --greedy --max-tokens 96 --file "$SAMPLE" --prompt "$QUESTION"
