#!/bin/bash
# End-to-end check of sharded summaries with a real scheduler (issue 16). Opt-in: it installs
# slurm-wlm and munge from Debian, starts munged, slurmctld and slurmd on this machine (a
# one-node cluster on localhost, private ports, sockets and state under a temporary folder),
# submits a 3-task job array (`docdsa summarize --shard auto`, one library per shard) over a
# small corpus folder with one broken file, cancels one task (scancel) after its first summary,
# waits, reruns that shard alone (sbatch --array=K: it resumes), merges the shards' libraries, and
# compares with a single-machine run: the same sidecar files byte for byte (greedy decoding),
# the same library contents, run costs that add up. The daemons are stopped on every exit.
#
# Usage: sudo scripts/slurm_check.sh [BUILD_DIR]     (default build/; needs root: apt, daemons)
# Env:   DOCDSA_MODEL (default models/SmolLM2-135M-Instruct.Q4_1.gguf), DOCDSA_CORPUS
#        (default ../shared/corpus), SLURM_CHECK_WORK (default a new /tmp/docdsa-slurm.XXXXXX),
#        SLURM_CHECK_TIMEOUT (seconds for the array, default 900).
# Containers: no cgroups needed (proctrack/linuxproc, task/none).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
DOCDSA=$(readlink -f "$BUILD/app/cli/docdsa")
MODEL=$(readlink -f "${DOCDSA_MODEL:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}")
CORPUS=$(readlink -f "${DOCDSA_CORPUS:-$ROOT/../shared/corpus}")
TIMEOUT=${SLURM_CHECK_TIMEOUT:-900}
N=3
say() { echo "slurm_check: $*"; }
fail() { say "FAIL: $*"; exit 1; }

[ -x "$DOCDSA" ] || fail "no docdsa at $DOCDSA (build it, or give the build folder)"
[ -f "$MODEL" ] || fail "no model at $MODEL"
[ -d "$CORPUS" ] || fail "no corpus at $CORPUS"
[ "$(id -u)" = 0 ] || fail "run as root: it installs packages and starts daemons"

# --- 1. Packages --------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # policy-rc.d: the packages' own service starts are not wanted (ours are private, below)
  apt-get install -y -q --no-install-recommends slurm-wlm munge sqlite3 >/dev/null
fi
say "$(slurmctld -V), $(munged -V 2>&1 | head -1)"

# --- 2. A private one-node cluster ---------------------------------------------------------
WORK=${SLURM_CHECK_WORK:-$(mktemp -d /tmp/docdsa-slurm.XXXXXX)}
mkdir -p "$WORK"
WORK=$(readlink -f "$WORK")
rm -rf "$WORK/slurm" "$WORK/munge"
mkdir -p "$WORK/slurm/state" "$WORK/slurm/spool" "$WORK/slurm/logs" "$WORK/munge"
chmod 700 "$WORK/munge"
MUNGE_SOCKET=$WORK/munge/munge.socket
PIDS=()
cleanup() {
  local rc=$?
  set +e
  [ -n "${SLURM_CONF:-}" ] && timeout 10 scancel --quiet --user=root >/dev/null 2>&1
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do  # bounded: then SIGKILL
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  [ -f "$WORK/munge/munged.pid" ] && kill "$(cat "$WORK/munge/munged.pid")" 2>/dev/null
  if [ $rc -ne 0 ]; then
    say "logs kept under $WORK/slurm/logs and $WORK/slurm/*.log"
    tail -n 20 "$WORK/slurm/slurmctld.log" "$WORK/slurm/slurmd.log" 2>/dev/null
  fi
  exit $rc
}
trap cleanup EXIT INT TERM

# munge: a fresh key, its own socket (never the system's)
dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$WORK/munge/munge.key"
munged --force --key-file="$WORK/munge/munge.key" --socket="$MUNGE_SOCKET" --pid-file="$WORK/munge/munged.pid" \
  --log-file="$WORK/munge/munged.log" --seed-file="$WORK/munge/munged.seed"
for _ in $(seq 50); do [ -S "$MUNGE_SOCKET" ] && break; sleep 0.1; done
munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET" >/dev/null || fail "munge does not work"

CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
PORT=$((20000 + RANDOM % 20000))  # ctld port; slurmd on the next one
export SLURM_CONF=$WORK/slurm/slurm.conf
cat > "$SLURM_CONF" <<EOF
ClusterName=docdsa-check
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$WORK/slurm/state
SlurmdSpoolDir=$WORK/slurm/spool
SlurmctldPidFile=$WORK/slurm/slurmctld.pid
SlurmdPidFile=$WORK/slurm/slurmd.pid
SlurmctldLogFile=$WORK/slurm/slurmctld.log
SlurmdLogFile=$WORK/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -D -i -f "$SLURM_CONF" > "$WORK/slurm/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" > "$WORK/slurm/slurmd.out" 2>&1 &
PIDS+=($!)
up=0
for _ in $(seq 60); do
  if timeout 5 sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then up=1; break; fi
  sleep 1
done
[ $up -eq 1 ] || fail "the node did not come up in 60 s: $(timeout 5 sinfo -N 2>&1 | tail -1)"
say "cluster up: $(sinfo -h -o '%P %a %D %T %c CPUs')"

# --- 3. The corpus, and the one-machine run --------------------------------------------------
IN=$WORK/in
rm -rf "$IN" "$WORK/out-single" "$WORK/out-slurm" "$WORK/shards" "$WORK"/*.sqlite*
mkdir -p "$IN/hearings" "$IN/sub" "$WORK/shards"
cp "$ROOT/resources/demo/lighthouse.txt" "$IN/"
cp "$CORPUS/transcripts/edge-cases/srt/go-astisub__example-in-styled.srt" "$CORPUS/transcripts/edge-cases/srt/pysrt__bom-utf-8.srt" "$IN/hearings/"
cp "$CORPUS/transcripts/edge-cases/srt/webvtt-py__sample.srt" "$IN/"
cp "$CORPUS/pdf/malformed/ocrmypdf__invalid.pdf" "$IN/broken.pdf"
printf 'Minutes of the harbour board.\nThe board met on Tuesday and agreed to repair the east pier before winter.\n' > "$IN/sub/minutes.md"
printf 'Notice to mariners.\nThe north light is out of service for painting until Friday; use the fog signal.\n' > "$IN/sub/notice.txt"
GOOD=6
export XDG_CACHE_HOME=$WORK/cache  # the indexer, calibrated once by the single run, shared by the tasks
export DOCDSA_MODEL=$MODEL
t0=$(date +%s)
set +e
"$DOCDSA" summarize --json --db "$WORK/single.sqlite" --out "$WORK/out-single" -n 32 "$IN" > "$WORK/single.json"
rc=$?
set -e
[ $rc -eq 1 ] || fail "single run: exit $rc (expected 1: broken.pdf)"
say "single run: $(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(j['done'], 'done,', j['failed'], 'failed')" "$WORK/single.json") in $(( $(date +%s) - t0 )) s"

# --- 4. The job array -------------------------------------------------------------------------
cat > "$WORK/shard.sbatch" <<EOF
#!/bin/bash
#SBATCH --job-name=docdsa-shards
#SBATCH --output=$WORK/slurm/logs/%A_%a.out
#SBATCH --cpus-per-task=1
# One shard per array task; a shard's own library; the sidecars into the shared --out.
"$DOCDSA" summarize --json --shard auto --shards $N --db "$WORK/shards/shard-\$SLURM_ARRAY_TASK_ID.sqlite" \\
  --out "$WORK/out-slurm" -n 32 "$IN" > "$WORK/shards/shard-\$SLURM_ARRAY_TASK_ID.\$SLURM_ARRAY_JOB_ID.json"
rc=\$?
echo \$rc > "$WORK/shards/shard-\$SLURM_ARRAY_TASK_ID.\$SLURM_ARRAY_JOB_ID.rc"
exit \$rc
EOF
# The victim: a shard with at least two documents (a dry run lists a shard without
# summarising), cancelled with scancel once it has committed its first summary.
victim=-1 most=0
for k in $(seq 0 $((N - 1))); do
  set +e; "$DOCDSA" summarize --json --dry-run --db "$WORK/dry.sqlite" --shard $k/$N "$IN" > "$WORK/dry$k.json"; set -e
  n=$(python3 -c "import json,sys; print(sum(f['status']=='would_summarize' for f in json.load(open(sys.argv[1]))['files']))" "$WORK/dry$k.json")
  if [ "$n" -gt $most ]; then most=$n victim=$k; fi
done
[ $most -ge 2 ] || fail "no shard has two documents"
t0=$(date +%s)
timeout "$TIMEOUT" sbatch --wait --array=0-$((N - 1)) --parsable "$WORK/shard.sbatch" > "$WORK/sbatch.out" 2>&1 &
sbatch_pid=$!
job=""
for _ in $(seq 100); do job=$(head -1 "$WORK/sbatch.out" 2>/dev/null | cut -d';' -f1); [ -n "$job" ] && break; sleep 0.2; done
[ -n "$job" ] || fail "sbatch printed no job id: $(cat "$WORK/sbatch.out")"
vdb=$WORK/shards/shard-$victim.sqlite
cancelled=0
for _ in $(seq $((TIMEOUT * 5))); do
  if [ -s "$vdb" ] && [ "$(sqlite3 -readonly "$vdb" 'SELECT COUNT(*) FROM summaries' 2>/dev/null || echo 0)" -ge 1 ]; then
    scancel "${job}_$victim"; cancelled=1; break
  fi
  kill -0 $sbatch_pid 2>/dev/null || break
  sleep 0.2
done
set +e; wait $sbatch_pid; rc=$?; set -e
[ $rc -ne 124 ] || fail "the array did not finish in $TIMEOUT s"
[ $cancelled -eq 1 ] || fail "task $victim was never seen with a finished summary"
say "sbatch --array=0-$((N - 1)) --wait (job $job): exit $rc in $(( $(date +%s) - t0 )) s; task $victim cancelled (scancel) after its first summary"
[ $rc -ne 0 ] || fail "sbatch exit 0 (a task was cancelled and one has broken.pdf)"
[ ! -f "$WORK/shards/shard-$victim.$job.rc" ] || fail "task $victim finished before it was cancelled"
[ "$(sqlite3 -readonly "$vdb" 'PRAGMA integrity_check')" = ok ] || fail "the cancelled shard's library is damaged"
partial=$(sqlite3 -readonly "$vdb" 'SELECT COUNT(*) FROM summaries')
[ "$partial" -lt "$most" ] || fail "task $victim had finished all $most summaries when cancelled"
say "task $victim: killed with $partial of $most summaries committed, library intact"

# --- 5. The cancelled shard rerun alone (--array=K): still shard K of N; it resumes -------------
set +e
timeout "$TIMEOUT" sbatch --wait --array=$victim --parsable "$WORK/shard.sbatch" > "$WORK/sbatch2.out" 2>&1
rc=$?
set -e
job2=$(head -1 "$WORK/sbatch2.out" | cut -d';' -f1)
[ -f "$WORK/shards/shard-$victim.$job2.json" ] || fail "no report from the rerun (job $job2): $(cat "$WORK/sbatch2.out")"
rm -f "$WORK/shards/shard-$victim.$job.json" "$WORK/shards/shard-$victim.$job.rc"  # the cancelled run's, if any
python3 - "$WORK/shards" $N $GOOD $victim <<'PY' || fail "the shards' reports"
import glob, json, os, sys
d, n, good, victim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
failed = done = skipped = 0
for k in range(n):
    reports = glob.glob(os.path.join(d, f"shard-{k}.*.json"))
    assert len(reports) == 1, (k, reports)
    j = json.load(open(reports[0])); rc = int(open(reports[0][:-5] + ".rc").read())
    assert j["shard"]["index"] == k and j["shard"]["count"] == n, j["shard"]
    bad = [f for f in j["files"] if f["status"] == "failed"]
    assert rc == (1 if bad else 0), (k, rc, bad)
    assert all("broken.pdf" in f["error"] for f in bad), bad
    if k == victim:
        assert j["skipped"] >= 1, ("the rerun did not resume", j)
    else:
        assert j["skipped"] == 0, j
    failed += len(bad); done += j["done"]; skipped += j["skipped"]
    what = "rerun alone" if k == victim else "array task"
    print(f"  task {k} ({what}): {j['shard']['files']} files, {j['done']} done, {j['skipped']} skipped, {len(bad)} failed, exit {rc}")
assert failed == 1, f"broken.pdf reported {failed} times"
assert done + skipped == good, f"{done} summarised + {skipped} skipped, expected {good}"
PY
# --- 6. Merge (twice: the second changes nothing), compare with the single run --------------
"$DOCDSA" library merge --json "$WORK/merged.sqlite" "$WORK"/shards/shard-*.sqlite > "$WORK/merge1.json"
sqlite3 "$WORK/merged.sqlite" .dump > "$WORK/dump1.sql"
"$DOCDSA" library merge "$WORK/merged.sqlite" "$WORK"/shards/shard-*.sqlite
sqlite3 "$WORK/merged.sqlite" .dump > "$WORK/dump2.sql"
cmp -s "$WORK/dump1.sql" "$WORK/dump2.sql" || fail "the second merge changed the library"
say "merge: $(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(j['inputs'], 'libraries,', j['documents_added'], 'documents,', j['runs'], 'runs,', j['summaries'], 'summaries')" "$WORK/merge1.json"); merged again: unchanged"

diff -r "$WORK/out-single" "$WORK/out-slurm" || fail "the sidecars differ from the single run"
say "sidecars: $(find "$WORK/out-slurm" -name '*.summary.md' | wc -l) files, identical to the single run's (diff -r)"

contents() {
  sqlite3 "$1" "SELECT d.path, d.content_hash, d.kind, d.title, d.n_segments, d.n_tokens, s.text, s.sources, r.model,
    json_extract(r.cost_report, '$.tokens.prompt'), json_extract(r.cost_report, '$.tokens.decoded')
    FROM documents d LEFT JOIN summaries s ON s.doc_id = d.id LEFT JOIN runs r ON r.id = s.run_id ORDER BY d.path"
  sqlite3 "$1" "SELECT d.path, s.idx, s.text FROM segments s JOIN documents d ON d.id = s.doc_id ORDER BY d.path, s.idx"
  sqlite3 "$1" "SELECT d.path, c.idx, c.text, c.n_tokens FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY d.path, c.idx"
}
diff <(contents "$WORK/single.sqlite") <(contents "$WORK/merged.sqlite") || fail "the library contents differ from the single run"
[ "$(sqlite3 "$WORK/merged.sqlite" 'SELECT COUNT(*) || "/" || COUNT(DISTINCT doc_id) FROM summaries')" = "$GOOD/$GOOD" ] || fail "duplicated summaries"
[ "$(sqlite3 "$WORK/merged.sqlite" 'PRAGMA integrity_check')" = ok ] || fail "merged library integrity"
sum() { sqlite3 "$1" "SELECT COUNT(*) || ' ' || TOTAL(json_extract(cost_report,'$.tokens.prompt')) || ' ' || TOTAL(json_extract(cost_report,'$.tokens.decoded')) FROM runs"; }
shards_sum=$(for f in "$WORK"/shards/shard-*.sqlite; do sum "$f"; done | awk '{n+=$1; p+=$2; d+=$3} END {printf "%d %d %d", n, p, d}')
merged_sum=$(sum "$WORK/merged.sqlite" | awk '{printf "%d %d %d", $1, $2, $3}')
single_sum=$(sum "$WORK/single.sqlite" | awk '{printf "%d %d %d", $1, $2, $3}')
[ "$merged_sum" = "$shards_sum" ] || fail "merged costs ($merged_sum) != the shards' sum ($shards_sum)"
[ "$merged_sum" = "$single_sum" ] || fail "merged costs ($merged_sum) != the single run's ($single_sum)"
say "library: the same documents, segments, chunks and summaries as the single run; runs/prompt/decoded tokens: $merged_sum (shards' sum $shards_sum)"
say "ok"
