#!/usr/bin/env bash
# Crash safety: SIGKILL `topo run` at 20 random moments across a tiny experiment (until
# 20 kills have landed on a running process), restarting it each time (and running `topo report` while it trains); then let it
# finish and check that every run is done, every JSON/JSONL/CSV file parses, and the
# records equal an uninterrupted run's (timings aside).
# Usage: scripts/kill_test.sh [path/to/topo] [kills] [seed]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
topo=${1:-}
kills=${2:-20}
seed=${3:-$$}
RANDOM=$seed
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
tmp=$(mktemp -d /tmp/topo-kill.XXXXXX)
child=
cleanup() {
    local code=$?
    if [ -n "$child" ]; then kill -9 "$child" 2>/dev/null || true; fi
    rm -rf "$tmp"
    exit $code
}
trap cleanup EXIT
fail() { echo "[kill_test] FAIL: $*"; exit 1; }
cd "$tmp"

# The tests' tiny experiment over two seeds, pruned: four runs of two epochs that write
# every kind of file a run writes.
cat >kill.yaml <<EOF
extends: $repo/tests/fixtures/tiny.yaml
name: kill
datasets:
  fm: { root: $repo/data/fashion-mnist-subset, limit: 400 }
grid: { seed: [0, 1] }
training: { batch_size: 40 }
pruning: { methods: [l2], proportions: [0, 0.5] }
EOF

t0=$(date +%s.%N)
"$topo" run kill.yaml --results reference --no-report 2>reference.log \
    || { cat reference.log; fail "the uninterrupted run failed"; }
t1=$(date +%s.%N)
whole=$(echo "$t1 - $t0" | bc)
echo "[kill_test] uninterrupted: $whole s; seed $seed; $kills kills"

# The shortest delay: 200 ms, or less when the whole experiment is quick (an optimised
# binary does it in under 2 s, and a fixed 200 ms let whole restarts finish unkilled).
whole_ms=$(echo "$whole * 1000" | bc | cut -d. -f1)
floor_ms=$((whole_ms / (2 * kills)))
floor_ms=$((floor_ms < 20 ? 20 : (floor_ms > 200 ? 200 : floor_ms)))
compare() { # the killed experiment's folder, against the uninterrupted one
python3 - reference/kill "$1" <<'EOF' || fail "results differ or do not parse"
import csv, json, os, sys
ref, got = sys.argv[1], sys.argv[2]
# Timings, and what differs between sessions by nature (the command, its start and end).
TIMINGS = {"seconds", "images_per_second", "wall_time", "command", "started", "ended"}

def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in TIMINGS}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v

def parse(path):
    if path.endswith(".jsonl"):
        return [json.loads(l) for l in open(path) if l.strip()]
    if path.endswith(".json"):
        return json.load(open(path))
    if path.endswith(".csv"):
        return list(csv.DictReader(open(path)))
    return None

files = 0
leftovers = []
for root, _, names in os.walk(got):
    for n in names:
        p = os.path.join(root, n)
        if n.startswith(".") or n == "lock" or n.endswith(".recover"):
            leftovers.append(p)
            continue
        parse(p)
        files += 1
runs = sorted(os.listdir(os.path.join(ref, "runs")))
assert runs == sorted(os.listdir(os.path.join(got, "runs"))), "different runs"
for r in runs:
    a, b = os.path.join(ref, "runs", r), os.path.join(got, "runs", r)
    assert json.load(open(b + "/summary.json"))["status"] == "done", r
    for f in ["metrics.jsonl", "summary.json", "pruning.csv", "topography.json", "checkpoints/state.json"]:
        x, y = strip(parse(os.path.join(a, f))), strip(parse(os.path.join(b, f)))
        assert x == y, f"{r}/{f} differs:\n{x}\n{y}"
    for f in ["checkpoints/best.safetensors", "checkpoints/last.safetensors"]:
        assert open(os.path.join(a, f), "rb").read() == open(os.path.join(b, f), "rb").read(), f"{r}/{f} differs"
print(f"[kill_test] {len(runs)} runs equal the uninterrupted ones; {files} files parse; "
      f"{len(leftovers)} leftover temporary file(s){': ' + ', '.join(leftovers) if leftovers else ''}")
assert not [p for p in leftovers if p.endswith("lock")], "a lock was left behind"
EOF
}

survived=0
reports=0
restarts=0
# Each delay is drawn up to the remaining work (estimated from the epochs committed)
# shared by the kills still to land: restarts get further and further, so the kills
# spread over the whole experiment and its phases (start, epochs, checkpoints, test,
# pruning, summary). On a loaded machine a restart can still finish before its kill:
# then the finished experiment is checked against the uninterrupted one, and the kills
# still to land go to a fresh copy.
total_epochs=8 # 4 runs of 2 epochs
committed=0
i=0
while [ $survived -lt "$kills" ]; do
    i=$((i + 1))
    [ $i -le $((3 * kills)) ] || fail "only $survived of $kills kills landed in $((i - 1)) attempts"
    "$topo" run kill.yaml --results killed --no-report 2>>killed.log &
    child=$!
    max_ms=$(echo "900 * $whole * ($total_epochs - $committed) / $total_epochs / ($kills - $survived)" | bc | cut -d. -f1)
    delay_ms=$((floor_ms + (RANDOM * 32768 + RANDOM) % (max_ms > floor_ms ? max_ms - floor_ms : 1)))
    if [ $((i % 4)) -eq 0 ] && [ -d killed/kill ]; then
        # A reader during training: never a torn file.
        sleep "$(echo "$delay_ms / 2000" | bc -l)"
        "$topo" report killed/kill >>report.log 2>&1 || fail "topo report failed during training (report.log)"
        reports=$((reports + 1))
        sleep "$(echo "$delay_ms / 2000" | bc -l)"
    else
        sleep "$(echo "$delay_ms / 1000" | bc -l)"
    fi
    kill -9 "$child" 2>/dev/null || true
    rc=0
    wait "$child" 2>/dev/null || rc=$?
    child=
    # 137: killed by SIGKILL; 0: it had finished before the kill.
    [ $rc -eq 137 ] && survived=$((survived + 1))
    [ $rc -eq 137 ] || [ $rc -eq 0 ] || fail "topo run exited with $rc (killed.log)"
    done_runs=$(grep -l '"status": "done"' killed/kill/runs/*/summary.json 2>/dev/null | wc -l || true)
    # A done run counts its epochs and the stages after them as one more.
    committed=$("$topo" plan kill.yaml --results killed --format json \
        | python3 -c 'import json, sys; print(sum(r["epochs_done"] or 0 for r in json.load(sys.stdin)["runs"]))')
    committed=$(( committed + done_runs > total_epochs - 1 ? total_epochs - 1 : committed + done_runs ))
    echo "[kill_test] attempt $i, SIGKILL after ${delay_ms} ms (exit $rc): $done_runs run(s) done"
    if [ "$done_runs" -eq 4 ] && [ $survived -lt "$kills" ]; then
        compare killed/kill
        rm -rf killed
        committed=0
        restarts=$((restarts + 1))
        echo "[kill_test] the experiment finished before kill $((survived + 1)): checked, started again"
    fi
done
"$topo" run kill.yaml --results killed --no-report 2>>killed.log || fail "the final run failed (killed.log)"
t2=$(date +%s.%N)

compare killed/kill
echo "[kill_test] PASS: $(ls killed/kill/runs | wc -l) runs, $survived kills survived in $i attempts, $reports reports during training, $restarts restart(s) from scratch, wall time $(echo "$t2 - $t1" | bc) s (uninterrupted: $whole s)"
