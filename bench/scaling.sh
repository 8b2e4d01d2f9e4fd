#!/usr/bin/env bash
# Strong scaling of one `ddtrain train` configuration over rank counts: wall time per outer
# iteration and parallel efficiency against 1 rank, every rank count in the same invocation.
#
#   bench/scaling.sh BUILD_DIR "1 2 3 6" train-options...
#   e.g. bench/scaling.sh build "1 2 3 6" --problem allen_cahn --solver plbfgs --variant additive \
#        --subdomains 6 --nf 2000 --epochs 20
#
# Prints CSV: ranks,iterations,wall_time_s,s_per_iteration,speedup,efficiency. Beyond the core
# count the ranks are oversubscribed (say so when you record the figures).
set -euo pipefail
build=$1; ranks=$2; shift 2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "# $(date -u +%F) $(nproc --all) cores; ddtrain train $*"
echo "ranks,iterations,wall_time_s,s_per_iteration,speedup,efficiency"
base=""
for p in $ranks; do
  mpirun -np "$p" --oversubscribe "$build/ddtrain" train "$@" --threads 1 --quiet --out "$work/np$p" >/dev/null
  read -r iterations wall < <(python3 -c "import json,sys; s=json.load(open('$work/np$p/summary.json')); print(s['iterations'], s['wall_time_s'])")
  per=$(python3 -c "print($wall / max($iterations, 1))")
  [ -z "$base" ] && base=$per
  python3 -c "b=$base; x=$per; print(f'$p,$iterations,{$wall:.3f},{x:.4f},{b/x:.2f},{b/x/$p:.2f}')"
done
