#!/usr/bin/env bash
# The Allen-Cahn accuracy ablation (examples/allen_cahn/README.md): from the best configuration
# of the L-BFGS era to examples/allen_cahn/accurate.ini, one ingredient at a time, each run given
# the same training time, then the same-network PyTorch runs (torch.optim.LBFGS with strong
# Wolfe and 50 pairs; Adam) in the same invocation. Prints one markdown row per run: final rel.
# L2, the training time at which 1e-2 / 1e-3 / 1e-4 were first reached (metric every 100
# iterations), iterations and gradient evaluations.
#
# Usage: bench/allen_cahn_accuracy.sh [BUILD_DIR] [OUT_DIR]
# Environment: SECONDS_PER_RUN (120), ROWS (all: a space-separated subset of the row names
# below), THREADS (2). Needs python3-torch and python3-scipy (scripts/install-deps.sh
# --with-bench). Run it on an otherwise idle machine; runs go one after the other.
set -euo pipefail
build=${1:-build}
out=${2:-runs/accuracy}
here=$(cd "$(dirname "$0")" && pwd)
seconds=${SECONDS_PER_RUN:-120}
threads=${THREADS:-2}
python=/usr/bin/python3  # Debian's python3-torch
mkdir -p "$out"
[[ -f "$out/ref.mat" ]] || "$build/ddtrain" reference allen_cahn --out "$out/ref.mat" > /dev/null

lbfgs_era="--problem allen_cahn --solver lbfgs --history 50 --nf 10000"
fc="--model fc --depth 3 --width 30 --precision float64 --nf 3000"
accurate="--config $here/../examples/allen_cahn/accurate.ini"
declare -A rows=(
  [lbfgs-resnet-f32]="$lbfgs_era --precision float32"
  [lbfgs-resnet-f64]="$lbfgs_era --precision float64"
  [lbfgs-fc]="--problem allen_cahn --solver lbfgs --history 50 $fc"
  [bfgs-plain]="--problem allen_cahn --solver bfgs --update bfgs $fc"
  [ssbfgs-ab]="--problem allen_cahn --solver bfgs --update ssbfgs-ab $fc"
  [ssbroyden1]="--problem allen_cahn --solver bfgs --update ssbroyden1 $fc"
  [ssbroyden2]="--problem allen_cahn --solver bfgs --update ssbroyden2 $fc"
  [ic-decay]="--problem allen_cahn --solver bfgs $fc --ic-decay 10"
  [accurate]="$accurate"
  [accurate-warmup]="$accurate --warmup adam:1000 --warmup-lr 0.005"
  [accurate-causal]="$accurate --causal-epsilon 1"
  [accurate-fourier2]="$accurate --fourier-modes 2"
  [accurate-rwf]="$accurate --weight-factorization"
  [accurate-modified-mlp]="$accurate --model modified-mlp"
  [accurate-smoothing]="$accurate --ic-smoothing"
)
order="lbfgs-resnet-f32 lbfgs-resnet-f64 lbfgs-fc bfgs-plain ssbfgs-ab ssbroyden1 ssbroyden2 ic-decay accurate accurate-warmup accurate-causal accurate-fourier2 accurate-rwf accurate-modified-mlp accurate-smoothing pytorch-lbfgs pytorch-lbfgs-decay pytorch-adam"

echo "# $(date -u '+%F %T') UTC; $(uname -srm); nproc $(getconf _NPROCESSORS_ONLN); ${seconds} s of training per run, ${threads} threads"
# The machine's speed today, for comparing times across days: one PyTorch evaluation (loss and
# gradient, nested autograd) of the accurate network at N_f = 3,000, float64.
$python "$here/pytorch_allen_cahn.py" --mode bench --model fc --depth 3 --width 30 --nf 3000 \
  --precision float64 --threads "$threads" --lbfgs-iterations 20 --adam-steps 20 |
  awk -F, '/^[0-9]/ {printf "# PyTorch closure (Adam step) at N_f 3000: %s ms; L-BFGS iteration %s ms\n", $4, $2}'
# Runs longer than 120 s also report their error at 120 s (the last metric row at or before it).
early=120
echo "| run | rel. L2 at ${early} s | rel. L2 at the end (${seconds} s) | to 1e-2 | to 1e-3 | to 1e-4 | iterations | grad evals | load |"
echo "|---|---|---|---|---|---|---|---|---|"
for row in ${ROWS:-$order}; do
  load=$(cut -d' ' -f1 /proc/loadavg)
  case "$row" in
    pytorch-*)
      optimizer=lbfgs decay=0
      [[ "$row" == pytorch-adam ]] && optimizer=adam
      [[ "$row" == pytorch-lbfgs-decay ]] && decay=10
      $python "$here/pytorch_allen_cahn.py" --mode time-limit --model fc --depth 3 --width 30 \
        --nf 3000 --precision float64 --derivatives autograd --optimizer "$optimizer" --history 50 \
        --ic-decay "$decay" --threads "$threads" --time-limit "$seconds" --metric-every 5 \
        --reference "$out/ref.mat" > "$out/$row.json"
      $python - "$out/$row.json" "$row" "$early" "$load" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = lambda k: "-" if d["time_to"][k] is None else f"{d['time_to'][k]:.0f} s"
early = [m for when, m in d["metric_history"] if when <= float(sys.argv[3])]
e = f"{early[-1]:.3g}" if early else "-"
print(f"| {sys.argv[2]} | {e} | {d['metric']:.3g} | {t('1e-2')} | {t('1e-3')} | {t('1e-4')} | "
      f"{d['iterations']} | {d['evaluations']} | {sys.argv[4]} |")
PY
      ;;
    *)
      rm -rf "$out/$row"
      # shellcheck disable=SC2086  # the row's options are words
      "$build/ddtrain" train ${rows[$row]} --time-limit "$seconds" --metric-every 100 \
        --threads "$threads" --quiet --out "$out/$row" > "$out/$row.log" 2>&1 || true
      $python - "$out/$row" "$row" "$load" "$early" <<'PY'
import csv, json, sys
run, name, load, early_s = sys.argv[1:]
s = json.load(open(run + "/summary.json"))
first, early = {}, "-"
for r in csv.DictReader(open(run + "/history.csv")):
    if r["metric"]:
        if float(r["wall_time_s"]) <= float(early_s):
            early = f"{float(r['metric']):.3g}"
        for k in ("1e-2", "1e-3", "1e-4"):
            if k not in first and float(r["metric"]) <= float(k):
                first[k] = float(r["wall_time_s"])
t = lambda k: f"{first[k]:.0f} s" if k in first else "-"
print(f"| {name} | {early} | {s['metric']:.3g} | {t('1e-2')} | {t('1e-3')} | {t('1e-4')} | "
      f"{s['iterations']} | {s['evaluations']} | {load} |")
PY
      ;;
  esac
done
