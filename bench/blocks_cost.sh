#!/usr/bin/env bash
# What `--blocks B` costs: the same `ddtrain train` run with and without fixed blocks, in
# alternating order, REPEATS times each, for one rank count and thread count; prints the median
# training time of each and their ratio (blocks / plain) measured in the same invocation.
#
#   bench/blocks_cost.sh BUILD_DIR RANKS THREADS BLOCKS train-options...
#   e.g. bench/blocks_cost.sh build 1 2 6 --problem burgers --solver lbfgs --epochs 60
#
# Environment: REPEATS (default 3).
set -euo pipefail
build=$1; ranks=$2; threads=$3; blocks=$4; shift 4
repeats=${REPEATS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {  # run NAME extra-options...: prints train_time_s
  local name=$1; shift
  mpirun -np "$ranks" --oversubscribe "$build/ddtrain" train "$@" --threads "$threads" --quiet \
    --overwrite --out "$work/$name" >/dev/null
  /usr/bin/python3 -c "import json; print(json.load(open('$work/$name/summary.json'))['train_time_s'])"
}
plain=(); blocked=()
for ((r = 0; r < repeats; ++r)); do
  if ((r % 2 == 0)); then
    plain+=("$(run plain "$@")"); blocked+=("$(run blocks "$@" --blocks "$blocks")")
  else
    blocked+=("$(run blocks "$@" --blocks "$blocks")"); plain+=("$(run plain "$@")")
  fi
done
/usr/bin/python3 - "$ranks" "$threads" "$blocks" "${plain[*]}" "${blocked[*]}" "$*" <<'PY'
import statistics, sys
ranks, threads, blocks, plain, blocked, options = sys.argv[1:7]
p = statistics.median(map(float, plain.split())); b = statistics.median(map(float, blocked.split()))
print(f"| {options} | {ranks} | {threads} | {blocks} | {p:.2f} | {b:.2f} | {b / p:.2f} |")
PY
