#!/usr/bin/env bash
# Installs what is missing (Debian packages, the default model), builds, and runs every test
# through CTest. Usage: scripts/test.sh [extra ctest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_deps.sh"
# Both models (the better one for the tests that read its GGUF; ~1.1 GB once);
# DOCDSA_TEST_MODELS=small fetches the small one alone, and those tests report as skipped.
"$ROOT/scripts/fetch_model.sh" "${DOCDSA_TEST_MODELS:-all}"
"$ROOT/scripts/build.sh"
cd "${DOCDSA_BUILD_DIR:-$ROOT/build}"
# Timing checks (label perf) need a quiet machine: run them with ctest -L perf.
ctest --output-on-failure -j "$(nproc)" -LE perf "$@"
# Then the fuzz targets (clang + libFuzzer build in build-fuzz/, label `fuzz`): a bounded run
# of each ($DOCDSA_FUZZ_SECONDS, default 20), several at once; a crash fails.
# DOCDSA_SKIP_FUZZ=1 leaves them out.
if [ "${DOCDSA_SKIP_FUZZ:-0}" != 1 ]; then
  DOCDSA_FUZZ_JOBS="${DOCDSA_FUZZ_JOBS:-$(nproc)}" "$ROOT/scripts/fuzz.sh" "${DOCDSA_FUZZ_SECONDS:-20}"
fi
