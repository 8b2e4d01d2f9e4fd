#!/usr/bin/env bash
# What an option costs: the same `ddtrain train` run with option set A and with option set B,
# in alternating order, REPEATS times each, for one rank count and thread count; prints one
# table row with the median training time of each, their ratio (B / A), measured in the same
# invocation, and whether every run ended at the same final loss, bit for bit.
#
#   bench/option_cost.sh BUILD_DIR RANKS THREADS "A-OPTIONS" "B-OPTIONS" train-options...
#   e.g. bench/option_cost.sh build 2 1 "--accumulate blocking" "--accumulate nonblocking" \
#          --problem allen_cahn --solver plbfgs --subdomains 3 --epochs 40
#
# Environment: REPEATS (default 3). Run it on an otherwise idle machine.
set -euo pipefail
build=$1; ranks=$2; threads=$3; a_options=$4; b_options=$5; shift 5
repeats=${REPEATS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {  # run NAME OPTIONS: prints "train_time_s final_loss"
  local name=$1 options=$2
  # shellcheck disable=SC2086
  mpirun -np "$ranks" --oversubscribe "$build/ddtrain" train "${train[@]}" $options --threads "$threads" \
    --quiet --overwrite --out "$work/$name" >/dev/null
  /usr/bin/python3 -c "import json; s = json.load(open('$work/$name/summary.json')); print(s['train_time_s'], repr(s['final_loss']))"
}
train=("$@")
a=(); b=()  # "time loss" pairs
for ((r = 0; r < repeats; ++r)); do
  if ((r % 2 == 0)); then
    a+=("$(run a "$a_options")"); b+=("$(run b "$b_options")")
  else
    b+=("$(run b "$b_options")"); a+=("$(run a "$a_options")")
  fi
done
/usr/bin/python3 - "$ranks" "$threads" "${a[*]}" "${b[*]}" "$*" <<'PY'
import statistics, sys
ranks, threads, a, b, options = sys.argv[1:6]
a, b = a.split(), b.split()
ta = statistics.median(map(float, a[0::2])); tb = statistics.median(map(float, b[0::2]))
same = "yes" if len(set(a[1::2] + b[1::2])) == 1 else "no"
print(f"| `{options}` | {ranks} | {threads} | {ta:.2f} | {tb:.2f} | {tb / ta:.2f} | {same} |")
PY
