#!/usr/bin/env bash
# Issue 4's "done when": ddtrain's L-BFGS against the same PyTorch PINN for the same wall time
# (N_f 10000, float32, 1 thread), one seed after the other, alternating sides
# (ddtrain seed 0, PyTorch seed 0, ddtrain seed 1, ...). Prints one line per run with the
# iterations, evaluations, final loss and rel. L2, then a summary.
#
# Usage: bench/allen_cahn_equal_time.sh [BUILD_DIR] [OUT_DIR]
# Environment: SEEDS ("0 1 2 3"), SECONDS_PER_RUN (120). Needs python3-torch and scipy
# (scripts/install-deps.sh --with-bench). Run it on an otherwise idle machine.
set -euo pipefail
build=${1:-build}
out=${2:-runs/equal-time}
here=$(cd "$(dirname "$0")" && pwd)
seconds=${SECONDS_PER_RUN:-120}
python=/usr/bin/python3  # Debian's python3-torch
mkdir -p "$out"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
# The same glibc settings for both sides (ddtrain applies them itself; see RESULTS-allen-cahn.md).
export MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=4000000000 MALLOC_TOP_PAD_=268435456
[[ -f "$out/ref.mat" ]] || "$build/ddtrain" reference allen_cahn --out "$out/ref.mat" > /dev/null
echo "# $(date -u '+%F %T') UTC; $(uname -srm); nproc $(getconf _NPROCESSORS_ONLN); ${seconds} s per run"
echo "side,seed,start_utc,load,iterations,evaluations,final_loss,rel_l2"
for seed in ${SEEDS:-0 1 2 3}; do
  start=$(date -u +%T) load=$(cut -d' ' -f1 /proc/loadavg)
  rm -rf "$out/ddtrain-$seed"
  "$build/ddtrain" train --problem allen_cahn --solver lbfgs --nf 10000 --precision float32 \
    --time-limit "$seconds" --epochs 1000000 --threads 1 --quiet --seed "$seed" \
    --out "$out/ddtrain-$seed" > "$out/ddtrain-$seed.log" 2>&1
  $python - "$out/ddtrain-$seed/summary.json" "$seed" "$start" "$load" <<'PY' | tee -a "$out/rows.csv"
import json, sys
s = json.load(open(sys.argv[1]))
print(f"ddtrain,{sys.argv[2]},{sys.argv[3]},{sys.argv[4]},{s['iterations']},{s['evaluations']},"
      f"{s['final_loss']:.5g},{s['metric']:.4f}")
PY
  start=$(date -u +%T) load=$(cut -d' ' -f1 /proc/loadavg)
  $python "$here/pytorch_allen_cahn.py" --mode time-limit --nf 10000 --threads 1 \
    --time-limit "$seconds" --reference "$out/ref.mat" --seed "$seed" |
    $python -c "
import json, sys
d = json.loads(sys.stdin.read())
print(f\"pytorch,$seed,$start,$load,{d['iterations']},{d['evaluations']},{d['loss']:.5g},{d['metric']:.4f}\")" |
    tee -a "$out/rows.csv"
done
$python - "$out/rows.csv" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    side, seed, _, _, its, _, _, err = line.strip().split(",")
    runs[seed][side] = (int(its), float(err))
pairs = [r for r in runs.values() if len(r) == 2]
wins = sum(r["ddtrain"][1] < r["pytorch"][1] for r in pairs)
mean = lambda side, i: statistics.mean(r[side][i] for r in pairs)
print(f"# {len(pairs)} seeds: ddtrain lower in {wins}; mean rel. L2 ddtrain {mean('ddtrain', 1):.3f} "
      f"vs PyTorch {mean('pytorch', 1):.3f}; iterations {mean('ddtrain', 0):.0f} vs {mean('pytorch', 0):.0f}")
PY
