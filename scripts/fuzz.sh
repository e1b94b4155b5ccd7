#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) into build-fuzz/ (or
# $DOCDSA_FUZZ_BUILD_DIR) and runs each through CTest (label `fuzz`, tests/CMakeLists.txt) for
# the given time, then prints one table: executions and crashes per target. Exits non-zero
# when any target crashed (the reproducer is under build-fuzz/tests/fuzz/artifacts/).
# Usage: scripts/fuzz.sh [seconds per target, default 60]
# $DOCDSA_FUZZ_JOBS targets run at once (default 1: one core each, sequentially).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-60}"
JOBS="${DOCDSA_FUZZ_JOBS:-1}"
BUILD="${DOCDSA_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
"$ROOT/scripts/setup_deps.sh"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" -DDOCDSA_BUILD_FUZZ=ON -DDOCDSA_BUILD_GUI=OFF -DDOCDSA_BUILD_TESTS=OFF \
  -DDOCDSA_FUZZ_SECONDS="$SECS" >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target fuzz_all

cd "$BUILD"
artifacts="$BUILD/tests/fuzz/artifacts"
mkdir -p "$artifacts"
stamp="$(mktemp)"
trap 'rm -f "$stamp"' EXIT
echo "fuzz: each target for ${SECS}s, $JOBS at a time"
rc=0
ctest -L fuzz -j "$JOBS" --output-on-failure || rc=$?

# One row per target from CTest's log: libFuzzer's final stats, and the reproducers it wrote.
printf '\n%-26s %7s %12s %9s %8s %8s\n' target result executions exec/s corpus+ crashes
awk '
  / Testing: fuzz\./ { name = $3; execs = "-"; rate = "-"; added = "-"; next }
  /stat::number_of_executed_units:/ { execs = $2 }
  /stat::average_exec_per_sec:/ { rate = $2 }
  /stat::new_units_added:/ { added = $2 }
  /^Test Passed\./ { res[name] = "ok" }
  /^Test Failed\./ { res[name] = "FAILED" }
  /" end time:/ { if (name != "" && name != "fuzz.seeds") printf "%s %s %s %s %s\n", name, res[name], execs, rate, added; name = "" }
' Testing/Temporary/LastTest.log | sort | while read -r name res execs rate added; do
  t="${name#fuzz.}"
  crashes=$(find "$artifacts" -maxdepth 1 -name "${t}-*" -newer "$stamp" 2>/dev/null | wc -l)
  case "$t" in *.regressions) crashes=$([ "$res" = ok ] && echo 0 || echo 1) ;; esac
  printf '%-26s %7s %12s %9s %8s %8s\n' "$name" "$res" "$execs" "$rate" "$added" "$crashes"
done
if [ "$rc" -ne 0 ]; then
  echo "fuzz: FAILED; reproducers (if any) in $artifacts; replay one with: $BUILD/tests/fuzz_<target> FILE" >&2
fi
exit "$rc"
