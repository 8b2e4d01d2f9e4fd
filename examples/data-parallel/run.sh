#!/usr/bin/env bash
# The data-parallel PINN experiments of examples/data-parallel/README.md: function fit and
# Poisson on P ranks in weak and strong scaling (time per epoch, DeepXDE's efficiencies, final
# error), and an ensemble of Poisson problems with one right-hand side per member.
#
#   examples/data-parallel/run.sh BUILD_DIR "RANKS" EPOCHS
#   e.g. examples/data-parallel/run.sh build "1 2" 2000       (2 cores)
#        examples/data-parallel/run.sh build "1 2 4 8" 2000   (16 cores)
#
# Writes results/scaling.csv and results/ensemble.csv next to this script (OUT=DIR: elsewhere)
# and prints them. Every rank runs one thread (--threads 1); beyond the core count the ranks are
# oversubscribed (say so when you record the figures). MPIRUN overrides the launcher.
set -euo pipefail
build=${1:-build}; ranks=${2:-"1 2"}; epochs=${3:-2000}
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/results}
mpirun=${MPIRUN:-mpirun}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# problem, points per rank (weak) and in total (strong), optimizer: as in "Horovod for PINNs"
# (function fit with data per rank; Poisson with 51 points per rank), Adam with lr 1e-3.
common="--solver adam --lr 1e-3 --precision float32 --depth 3 --width 32 --epochs $epochs --metric-every $epochs --threads 1 --quiet"
experiments=(
  "function_fit weak 256"
  "function_fit strong 2048"
  "poisson1d weak 51"
  "poisson1d strong 408"
)

summary_fields() {  # train_time_s epochs final_loss metric of a summary.json
  python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['train_time_s'], s['epochs'], s['final_loss'], s['metric'])" "$1"
}

echo "# $(date -u '+%F %H:%M UTC') $(nproc --all) cores, load $(cut -d' ' -f1-3 /proc/loadavg); ddtrain train $common" >&2
{
  echo "problem,scaling,ranks,nf_per_rank,nf_total,epochs,train_time_s,ms_per_epoch,efficiency,final_loss,rel_l2"
  for experiment in "${experiments[@]}"; do
    read -r problem scaling nf <<<"$experiment"
    base=""
    for p in $ranks; do
      dir="$work/$problem-$scaling-np$p"
      "$mpirun" -np "$p" --oversubscribe "$build/ddtrain" train --problem "$problem" --scaling "$scaling" \
        --nf "$nf" $common --out "$dir" >/dev/null
      read -r time done_epochs loss metric < <(summary_fields "$dir/summary.json")
      if [ "$scaling" = weak ]; then per_rank=$nf; total=$((nf * p)); else per_rank=$((nf / p)); total=$nf; fi
      per_epoch=$(python3 -c "print($time / max($done_epochs, 1))")
      [ -z "$base" ] && base=$per_epoch
      # DeepXDE: strong efficiency T1 / (P T_P), weak efficiency T1 / T_P (T: time per epoch).
      python3 -c "
b, t, p = $base, $per_epoch, $p
e = b / t if '$scaling' == 'weak' else b / (p * t)
print(f'$problem,$scaling,$p,$per_rank,$total,$done_epochs,{$time:.3f},{1e3 * t:.4f},{e:.2f},{$loss:.3e},{$metric:.3e}')"
    done
  done
} | tee "$out/scaling.csv"

# The ensemble: one Poisson problem per member, -u'' = (K pi)^2 sin(K pi x), K = 1, 2, 4; each
# member trains alone (its own seed) and writes members/R; L-BFGS in float64.
"$mpirun" -np 3 --oversubscribe "$build/ddtrain" train --problem poisson1d --ensemble --rhs-frequency 1,2,4 \
  --solver lbfgs --precision float64 --nf 64 --depth 3 --width 32 --epochs 500 --threads 1 --quiet \
  --out "$work/ensemble" >/dev/null
python3 - "$work/ensemble/summary.json" <<'PY' | tee "$out/ensemble.csv"
import json, sys
s = json.load(open(sys.argv[1]))
print("member,rhs_frequency,seed,termination,iterations,train_time_s,final_loss,rel_l2")
for m in s["members"]:
    print(f"{m['member']},{m['options']['rhs-frequency']:g},{m['seed']},{m['termination']},{m['iterations']},"
          f"{m['train_time_s']:.2f},{m['final_loss']:.3e},{m['metric']:.3e}")
PY
