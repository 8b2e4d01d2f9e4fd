#!/usr/bin/env bash
# The issue-5 grid on Allen–Cahn: plain L-BFGS, Adam, and preconditioned L-BFGS (additive and
# multiplicative) with N subdomains x k_loc local steps, each for the same wall-time budget,
# serially (one process emulating the N subdomains) and on N ranks. Then a markdown table.
#
#   bench/plbfgs_grid.sh BUILD_DIR OUT_DIR [seconds per run (default 60)] [extra train options]
#   e.g. bench/plbfgs_grid.sh build runs/grid 60 --nf 2000
#
# Environment: SUBDOMAINS (default "2 3 6"), LOCAL_STEPS (default "1 5 10 20"), RANKS=0 skips
# the N-rank runs. Beyond the core count the ranks are oversubscribed: say so with the figures.
set -euo pipefail
build=$1; out=$2; seconds=${3:-60}; shift $(( $# < 3 ? $# : 3 ))
subdomains=${SUBDOMAINS:-2 3 6}
local_steps=${LOCAL_STEPS:-1 5 10 20}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
mkdir -p "$out"
common=(--problem allen_cahn --time-limit "$seconds" --epochs 100000000 --threads 1 --quiet
        --overwrite "$@")
variants() {  # the preconditioned entries for N subdomains
  local n=$1 list=""
  for v in additive multiplicative; do
    for k in $local_steps; do
      list+="plbfgs-$v:subdomains=$n,local-steps=$k,metric-every=5,"
    done
  done
  echo "${list%,}"
}
echo "# $(date -u '+%F %T') UTC, $(nproc) cores, $seconds s per run; ddtrain compare ${common[*]}"
"$build/ddtrain" compare "${common[@]}" --out "$out/serial-baselines" \
  --solvers "lbfgs:metric-every=20,adam:metric-every=100" >/dev/null
for n in $subdomains; do
  "$build/ddtrain" compare "${common[@]}" --out "$out/serial-n$n" --solvers "$(variants "$n")" \
    >/dev/null
  if [ "${RANKS:-1}" != 0 ]; then
    mpirun -np "$n" --oversubscribe "$build/ddtrain" compare "${common[@]}" --out "$out/ranks-n$n" \
      --solvers "$(variants "$n")" >/dev/null
  fi
done
/usr/bin/python3 "$(dirname "$0")/plbfgs_grid_table.py" "$out"
