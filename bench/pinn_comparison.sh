#!/usr/bin/env bash
# Issue 21 item 4: the best plain solvers against the preconditioned (parameter-decomposition)
# variants at equal wall time, on Allen-Cahn, Burgers and Klein-Gordon, every run on the same
# number of MPI ranks (the plain solvers data-parallel over them). The solver order rotates from
# problem to problem. Writes OUT/table.md (rel. L2 at the CHECKPOINTS and at the end, and when
# each run first reached the best plain solver's final error), one run directory per row and
# per problem the error-vs-time curves, OUT/PROBLEM/plots/convergence.png.
#
# Usage: bench/pinn_comparison.sh [BUILD_DIR] [OUT_DIR]
# Environment: SECONDS_PER_RUN (60), the plain solvers' time; PRECONDITIONED_SECONDS
# (= SECONDS_PER_RUN), the preconditioned runs' time (half the plain time answers issue 21's
# target: the plain error in at most half the time); CHECKPOINTS ("120 600"); RANKS (2);
# PROBLEMS ("allen_cahn burgers klein_gordon"); ROWS (every row name below); SEED (0), the
# seed of every run's initialisation and points (repeat with other seeds to see the spread);
# BURGERS_NF (20000), Burgers' residual points (with 2,000, as the tables of 2026-12-06 before
# 22:00 used, every solver fits them exactly and the error freezes: examples/pinn-benchmarks);
# THREADS (the cores / RANKS, at least 1), threads per rank.
# Run it on an otherwise idle machine: the table is a comparison of wall times.
set -euo pipefail
build=${1:-build}
out=${2:-runs/pinn-comparison}
seconds=${SECONDS_PER_RUN:-60}
preconditioned_seconds=${PRECONDITIONED_SECONDS:-$seconds}
ranks=${RANKS:-2}
python=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
launch=(mpirun -np "$ranks" --oversubscribe)
[[ "$ranks" == 1 ]] && launch=()

# The network, points and constraints of each problem's example configuration.
declare -A problem_args=(
  [allen_cahn]="--problem allen_cahn --model fc --depth 3 --width 30 --fourier-modes 1 --ic-decay 10 --nf 3000 --rad-every 1000 --rad-c 1"
  [burgers]="--problem burgers --constraints hard --model resnet --depth 4 --width 20 --nf ${BURGERS_NF:-20000} --sampling lhs"
  [klein_gordon]="--problem klein_gordon --constraints soft --ic-weight 100 --bc-weight 100 --model resnet --depth 4 --width 20 --nf 2000 --n0 256 --nb 256 --sampling lhs"
)
# Plain solvers first in the list: the table's target is the best plain final error.
solvers=(
  "lbfgs|--solver lbfgs --history 50"
  "bfgs|--solver bfgs --update ssbroyden2"
  "additive-dense|--solver plbfgs --variant additive --subdomains 3 --local-solver bfgs --global-solver bfgs --local-steps 5"
  "multiplicative-dense|--solver plbfgs --variant multiplicative --subdomains 3 --local-solver bfgs --global-solver bfgs --local-steps 5"
)
seed=${SEED:-0}
cores=$(getconf _NPROCESSORS_ONLN)
threads=${THREADS:-$((cores / ranks > 0 ? cores / ranks : 1))}
common="--precision float64 --metric-every 50 --threads $threads --seed $seed --quiet --overwrite"
echo "# $(date -u '+%F %T') UTC; $(uname -srm); nproc $cores; $ranks ranks x $threads threads; seed $seed; Burgers points ${BURGERS_NF:-20000}; plain solvers ${seconds} s, preconditioned ${preconditioned_seconds} s" | tee "$out/header.txt"
rotation=0
for problem in ${PROBLEMS:-allen_cahn burgers klein_gordon}; do
  mkdir -p "$out/$problem"
  n=${#solvers[@]}
  for ((i = 0; i < n; ++i)); do
    row=${solvers[$(((i + rotation) % n))]}
    name=${row%%|*} args=${row#*|}
    [[ -n "${ROWS:-}" && " $ROWS " != *" $name "* ]] && continue
    limit=$seconds
    [[ "$args" == *plbfgs* ]] && limit=$preconditioned_seconds
    echo "$problem $name (load $(cut -d' ' -f1 /proc/loadavg))"
    # shellcheck disable=SC2086
    "${launch[@]}" "$build/ddtrain" train ${problem_args[$problem]} $args $common --time-limit "$limit" \
      --out "$out/$problem/$name" > "$out/$problem/$name.log" 2>&1 || echo "  failed: see $out/$problem/$name.log"
  done
  rotation=$((rotation + 1))
done
# shellcheck disable=SC2086
"$python" "$here/pinn_comparison_table.py" "$out" ${CHECKPOINTS:-120 600} | tee "$out/table.md"
# The error-vs-time curves: OUT/PROBLEM/plots/convergence.png (loss and rel. L2 against wall
# time and gradient evaluations, one line per row).
for problem in ${PROBLEMS:-allen_cahn burgers klein_gordon}; do
  "$build/ddtrain" plot "$out/$problem" > /dev/null || echo "plot of $out/$problem failed"
done
