#!/usr/bin/env bash
# Checks that a fresh Debian machine running scripts/setup_deps.sh gets every file the CMake
# configure step reads: each CMake package/module file (from `cmake --trace-format=json-v1`)
# and each pkg-config .pc file must belong (`dpkg -S`) to a Debian package in the Depends
# closure of setup_deps.sh's list (`apt-cache depends --recurse`, Recommends not followed,
# since setup_deps.sh installs with --no-install-recommends). A package that is on this
# machine only because something recommended it is exactly the bug this catches.
#
# Usage: scripts/check_deps_closure.sh [-v]
#   DOCDSA_DEPS_EXCLUDE="pkg ..." drops packages from the list (the test that the check fails).
# Exit: 0 closed, 1 a file comes from outside the closure (each one named), 77 not a Debian
# system (no dpkg/apt-cache): nothing to check.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERBOSE=0
[ "${1:-}" = "-v" ] && VERBOSE=1
for t in dpkg-query apt-cache cmake python3; do
  command -v "$t" >/dev/null || { echo "deps closure: $t not found; not a Debian system, nothing checked"; exit 77; }
done

mapfile -t PKGS < <("$ROOT/scripts/setup_deps.sh" --list)
if [ -n "${DOCDSA_DEPS_EXCLUDE:-}" ]; then
  keep=()
  for p in "${PKGS[@]}"; do
    case " $DOCDSA_DEPS_EXCLUDE " in *" $p "*) ;; *) keep+=("$p") ;; esac
  done
  PKGS=("${keep[@]}")
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Package lists are needed for apt-cache; a machine that never ran apt-get update has none.
if ! apt-cache show cmake >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
  else
    echo "deps closure: no apt package lists (run apt-get update as root)" >&2
    exit 1
  fi
fi

# Configure the whole project (GUI and tests on) from scratch, tracing every CMake file read.
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if ! cmake -S "$ROOT" -B "$WORK/build" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DDOCDSA_BUILD_GUI=ON \
  -DDOCDSA_BUILD_TESTS=ON --trace-format=json-v1 --trace-redirect="$WORK/trace.json" >"$WORK/configure.log" 2>&1; then
  echo "deps closure: configure failed:" >&2
  tail -n 30 "$WORK/configure.log" >&2
  exit 1
fi

apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances "${PKGS[@]}" >"$WORK/closure.txt"

python3 - "$ROOT" "$WORK" "$VERBOSE" "${#PKGS[@]}" <<'PY'
import json, os, re, subprocess, sys

root, work, verbose, n_listed = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
files, pc_modules = set(), set()
with open(os.path.join(work, "trace.json")) as f:
    for line in f:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        path = e.get("file")
        if path and not path.startswith(root + "/") and not path.startswith(work + "/"):
            files.add(os.path.normpath(path))
        if e.get("cmd", "").lower() in ("pkg_check_modules", "pkg_search_module"):
            args = e.get("args", [])[1:]
            pc_modules.update(a for a in args if a and not a.isupper() and not a.startswith("-"))
# pkg-config reads .pc files outside CMake's trace: ask pkg-config which ones.
for m in sorted(pc_modules):
    name = re.split(r"[<>=]", m)[0].strip()
    r = subprocess.run(["pkg-config", "--path", name], capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        files.add(os.path.normpath(r.stdout.strip()))

closure = set()
with open(os.path.join(work, "closure.txt")) as f:
    for line in f:
        s = line.strip()
        m = re.match(r"^\|?(?:Pre)?Depends:\s*(\S+)$", s)
        if m:  # a dependency (alternatives and virtual names included)
            closure.add(m.group(1).strip("<>").split(":")[0])
        elif s and " " not in s:  # a package heading, or a provider listed under a virtual name
            closure.add(s.strip("<>").split(":")[0])

def owner(path):
    # dpkg knows the path as packaged; try the merged-/usr spellings too.
    cands = [path, os.path.realpath(path)]
    for c in list(cands):
        if c.startswith("/lib") or c.startswith("/bin") or c.startswith("/sbin"):
            cands.append("/usr" + c)
        elif c.startswith("/usr/lib") or c.startswith("/usr/bin"):
            cands.append(c[4:])
    for c in cands:
        r = subprocess.run(["dpkg-query", "-S", c], capture_output=True, text=True)
        if r.returncode == 0:
            for line in r.stdout.splitlines():
                pkgs, _, p = line.rpartition(": ")
                if p == c:
                    return [x.strip().split(":")[0] for x in pkgs.split(",")]
    return None

bad, owners = [], {}
for path in sorted(files):
    pk = owner(path)
    if pk is None:
        bad.append(f"{path}: not installed by any Debian package (so no fresh machine has it)")
        continue
    for p in pk:
        owners.setdefault(p, []).append(path)
    if not any(p in closure for p in pk):
        bad.append(f"{path}: from {' or '.join(pk)}, which scripts/setup_deps.sh does not install "
                   f"(not in the Depends closure of its list; add {pk[0]} to it)")
if verbose:
    for p in sorted(owners):
        print(f"  {p}: {len(owners[p])} file(s), e.g. {owners[p][0]}")
if bad:
    print(f"deps closure: {len(bad)} file(s) read at configure come from outside the closure:")
    for b in bad:
        print("  " + b)
    sys.exit(1)
print(f"deps closure: ok: {len(files)} CMake and pkg-config files read at configure, from {len(owners)} "
      f"packages, all in the Depends closure ({len(closure)} packages) of setup_deps.sh's {n_listed}")
PY
