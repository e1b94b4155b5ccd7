#!/usr/bin/env bash
# Installs what is missing (Debian packages, the default model), builds, and runs every test
# through CTest. Usage: scripts/test.sh [extra ctest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_deps.sh"
"$ROOT/scripts/fetch_model.sh"
"$ROOT/scripts/build.sh"
cd "${DOCDSA_BUILD_DIR:-$ROOT/build}"
ctest --output-on-failure -j "$(nproc)" "$@"
