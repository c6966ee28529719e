#!/usr/bin/env bash
# A real one-node Slurm on localhost (MaxArraySize 4), and `topo slurm --submit` on it:
#  1. 6 tiny runs, more than MaxArraySize: split into arrays of 4 and 2, throttled to 2
#     tasks at once, the second after the first; every run finishes, each exactly once,
#     with the same metrics as a local `topo run` of the same file;
#  2. a longer run cancelled mid-run with `scancel`, resubmitted: it resumes from its
#     checkpoint (its log says "resuming after epoch N") and ends with every epoch once;
#  3. a run that fails (an infinite loss): its task exits non-zero, Slurm records FAILED.
# Needs root (installs slurmctld, slurmd, slurm-client and munge with apt if missing).
# Everything it starts is stopped by pid on exit, failure included.
# Usage: scripts/slurm_test.sh [path/to/topo]   (default: target/release/topo if newer
# than the sources, else target/debug/topo, built first)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
t_start=$(date +%s.%N)
say() { printf '[slurm_test %5.1fs] %s\n' "$(echo "$(date +%s.%N) - $t_start" | bc)" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    say "installing Slurm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
fi
command -v bc >/dev/null || fail "bc is needed for timings"

topo=${1:-}
if [ -z "$topo" ]; then
    # Cargo's target dir, wherever CARGO_TARGET_DIR puts it.
    target=${CARGO_TARGET_DIR:-$repo/target}
    newest_src=$(find src Cargo.toml -newer "$target/release/topo" 2>/dev/null | head -1 || true)
    if [ -x "$target/release/topo" ] && [ -z "$newest_src" ]; then
        topo=$target/release/topo
    else
        cargo build --quiet # a no-op when fresh
        topo=$target/debug/topo
    fi
fi
topo=$(realpath "$topo")
say "topo: $topo"

tmp=$(mktemp -d /tmp/topo-slurm.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
    local code=$?
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ $code -ne 0 ]; then
        for f in "$tmp"/log/* "$tmp"/work/slurm-*.out; do
            [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }
        done
    fi
    rm -rf "$tmp"
    exit $code
}
trap cleanup EXIT

# munge: the authentication Slurm's daemons and clients share.
mkdir -p "$tmp"/munge "$tmp"/state "$tmp"/spool "$tmp"/log "$tmp"/work /run/munge
chown munge:munge "$tmp"/munge /run/munge
setsid setpriv --reuid=munge --regid=munge --init-groups \
    munged -F --log-file="$tmp/munge/munged.log" --pid-file="$tmp/munge/munged.pid" \
    --seed-file="$tmp/munge/munged.seed" >"$tmp/log/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
[ -S /run/munge/munge.socket.2 ] || fail "munged did not start"

host=$(hostname -s)
node=$(slurmd -C | head -1)
export SLURM_CONF=$tmp/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=topo-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$tmp/log/jobcomp.txt
MailProg=/bin/true
MaxArraySize=4
MpiDefault=none
ReturnToService=2
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
setsid slurmctld -D -f "$SLURM_CONF" >"$tmp/log/slurmctld.out" 2>&1 &
pids+=($!)
setsid slurmd -D -f "$SLURM_CONF" >"$tmp/log/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    [ "$(sinfo -h -o %T 2>/dev/null || true)" = idle ] && break
    sleep 0.2
done
[ "$(sinfo -h -o %T)" = idle ] || fail "the node is not idle: $(sinfo -h -o '%T %E' || true)"
t_cluster=$(date +%s.%N)
say "cluster up: $(sinfo -h -o '%N %c CPUs %m MB %T')"

# The tests' tiny experiment: 6 runs of a narrow ResNet-18 on 200 images of the shipped
# subset, one epoch each; and one longer run of it to cancel.
work=$tmp/work
cat >"$work/tiny.yaml" <<EOF
extends: $repo/tests/fixtures/tiny.yaml
datasets:
  fm: { root: $repo/data/fashion-mnist-subset, limit: 200 }
grid: { seed: [0, 1, 2] }
training: { epochs: 1, batch_size: 50 }
slurm: { cpus: 1, time: "00:10:00", max_parallel: 2 }
EOF
cat >"$work/long.yaml" <<EOF
extends: tiny.yaml
name: long
datasets:
  fm: { limit: 300 }
grid: { topography: [grid2d], seed: [0] }
training: { epochs: 6 }
EOF
cd "$work"

wait_job() { # job id, timeout in seconds
    local deadline=$(($(date +%s) + $2))
    while [ -n "$(squeue -h -j "$1" 2>/dev/null)" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "job $1 still queued after $2 s: $(squeue -j "$1")"
        sleep 0.5
    done
}

# 1. Six runs, split into arrays of at most MaxArraySize (4) tasks.
ids=$("$topo" plan tiny.yaml --format json | python3 -c 'import json,sys; print("\n".join(r["id"] for r in json.load(sys.stdin)["runs"]))')
[ "$(echo "$ids" | wc -l)" -eq 6 ] || fail "expected 6 runs, got: $ids"
"$topo" slurm tiny.yaml --output array-preview.sh
grep -q -- '--array=0-3%2$' array-preview-1.sh || fail "bad first --array: $(grep array array-preview-1.sh)"
grep -q -- '--array=0-1%2$' array-preview-2.sh || fail "bad second --array: $(grep array array-preview-2.sh)"
t0=$(date +%s.%N)
jobs=$("$topo" slurm tiny.yaml --submit)
[ "$(echo "$jobs" | wc -l)" -eq 2 ] || fail "expected 2 arrays, got job ids: $jobs"
say "submitted the 6 runs as arrays $(echo $jobs)"
for job in $jobs; do wait_job "$job" 300; done
t1=$(date +%s.%N)
for id in $ids; do
    status=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' \
        "results/tiny/runs/$id/summary.json" 2>/dev/null || echo missing)
    [ "$status" = done ] || fail "$id: status $status"
    started=$(for job in $jobs; do cat slurm-"$job"_*.out; done | grep -c "\] $id (1 epochs)" || true)
    [ "$started" -eq 1 ] || fail "$id started $started times"
done
completed=$(grep -c "JobState=COMPLETED" "$tmp/log/jobcomp.txt" || true)
[ "$completed" -eq 6 ] || fail "jobcomp lists $completed completed tasks, not 6"
say "jobcomp: $(head -1 "$tmp/log/jobcomp.txt")"
# The throttle holds over both arrays: never more than 2 tasks at once, and the second
# array's tasks start after the first's end.
python3 - "$tmp/log/jobcomp.txt" $jobs <<'PY' || fail "more than 2 tasks ran at once, or the arrays overlapped"
import re, sys
from datetime import datetime
first, second = sys.argv[2], sys.argv[3]
tasks = []
for line in open(sys.argv[1]):
    f = dict(re.findall(r"(\w+)=(\S+)", line))
    t = lambda k: datetime.fromisoformat(f[k]).timestamp()
    tasks.append((f.get("ArrayJobId", f["JobId"]), t("StartTime"), t("EndTime")))
assert len(tasks) == 6, tasks
for _, s, _ in tasks:
    # One-second resolution: a task that starts as another ends overlaps neither.
    assert sum(1 for _, s2, e2 in tasks if s2 <= s < e2) <= 2, tasks
ends = [e for j, _, e in tasks if j == first]
starts = [s for j, s, _ in tasks if j == second]
assert len(ends) == 4 and len(starts) == 2, tasks
assert min(starts) >= max(ends), tasks
PY
say "every run done exactly once, at most 2 tasks at once, array 2 after array 1; wall time $(echo "$t1 - $t0" | bc) s"
# The same file run locally gives the same results as the array (timings aside).
"$topo" run tiny.yaml --results local --no-report >local.log 2>&1 || fail "local run failed: $(tail -5 local.log)"
python3 - results/tiny local/tiny <<'PY' || fail "the array's results differ from a local run's"
import json, pathlib, sys
a, b = (pathlib.Path(p) / "runs" for p in sys.argv[1:3])
def records(path):
    out = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        r.pop("seconds", None); r.pop("images_per_second", None); r.pop("wall_time", None)
        out.append(r)
    return out
ids = sorted(p.name for p in a.iterdir())
assert ids == sorted(p.name for p in b.iterdir()), "different runs"
for i in ids:
    assert records(a / i / "metrics.jsonl") == records(b / i / "metrics.jsonl"), i
    sa, sb = (json.loads((d / i / "summary.json").read_text()) for d in (a, b))
    assert (sa["test_accuracy"], sa["best_epoch"]) == (sb["test_accuracy"], sb["best_epoch"]), i
PY
say "a local topo run of the same file gives identical metrics for all 6 runs"
again=$("$topo" slurm tiny.yaml 2>&1 >/dev/null)
echo "$again" | grep -q "nothing to submit" || fail "done runs would be submitted again: $again"

# 2. Cancel a run (6 epochs of 300 images) mid-training, resubmit it, check it resumed.
long_id=$("$topo" plan long.yaml --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
epochs_done() { "$topo" plan long.yaml --format json | python3 -c 'import json, sys; print(json.load(sys.stdin)["runs"][0]["epochs_done"] or 0)'; }
job=$("$topo" slurm long.yaml --submit)
say "submitted the long run as job $job"
deadline=$(($(date +%s) + 300))
epoch=0
while [ "$epoch" -lt 2 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the long run never reached epoch 2"
    [ -n "$(squeue -h -j "$job")" ] || fail "the long run ended before it could be cancelled"
    sleep 0.2
    epoch=$(epochs_done)
done
scancel "$job"
wait_job "$job" 60
[ ! -f "results/long/runs/$long_id/summary.json" ] || fail "the cancelled run has a summary"
cancelled_at=$(epochs_done)
[ "$cancelled_at" -lt 6 ] || fail "the run finished before scancel"
say "cancelled job $job after epoch $cancelled_at"
job=$("$topo" slurm long.yaml --submit)
say "resubmitted as job $job"
wait_job "$job" 300
log=$(cat slurm-"$job"_0.out)
echo "$log" | grep -q "resuming after epoch $cancelled_at " \
    || fail "the resubmitted task did not resume: $log"
python3 - "results/long/runs/$long_id" <<'EOF' || fail "the resumed run's records are wrong"
import json, sys
run = sys.argv[1]
assert json.load(open(run + "/summary.json"))["status"] == "done"
records = [json.loads(l) for l in open(run + "/metrics.jsonl")]
keys = [(r["epoch"], r["split"]) for r in records if r["split"] != "test"]
want = [(e, s) for e in range(1, 7) for s in ("train", "validation")]
assert keys == want, keys
assert sum(r["split"] == "test" for r in records) == 1
EOF
t2=$(date +%s.%N)
say "the resubmitted run resumed after epoch $cancelled_at and finished all 6 epochs"

# 3. A run that fails: lambda 1e39 makes its loss infinite at the first step.
cat >fail.yaml <<EOF
extends: tiny.yaml
name: fail
grid: { topography: [grid2d], lambda: [1.0e+39], seed: [0] }
EOF
fail_id=$("$topo" plan fail.yaml --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
job=$("$topo" slurm fail.yaml --submit)
wait_job "$job" 120
state=$(grep "JobId=$job " "$tmp/log/jobcomp.txt" | grep -o "JobState=[A-Z_]*" || true)
[ "$state" = JobState=FAILED ] || fail "the failing run's task ended as '$state', not FAILED: $(grep "JobId=$job " "$tmp/log/jobcomp.txt" || true)"
grep -q '"status": "failed"' "results/fail/runs/$fail_id/summary.json" || fail "the failed run's summary does not say failed"
grep -q "failed: $fail_id" slurm-"$job"_0.out || fail "the task's log does not tell the failure: $(cat slurm-"$job"_0.out)"
say "the failing run's task exited non-zero: Slurm records $state"
say "PASS: cluster start $(echo "$t_cluster - $t_start" | bc) s, 6 runs in 2 arrays $(echo "$t1 - $t0" | bc) s, cancel+resume $(echo "$t2 - $t1" | bc) s, total $(echo "$(date +%s.%N) - $t_start" | bc) s"
