#!/usr/bin/env bash
# The issue-6 table: Fashion-MNIST (or MNIST / CIFAR-10 with --problem and --data), every
# method on 1, 2, 4, 8 ranks, test accuracy after 1 / 5 / 10 epochs, time and evaluations per
# epoch. One `ddtrain compare` per rank count, then bench/classification_table.py.
#
#   bench/mnist_grid.sh BUILD_DIR OUT_DIR [train options, e.g. --model cnn --epochs 5]
#
# Environment: RANKS (default "1 2 4 8"), SOLVERS (default sgd,adam,tr,sapts and apts with 2
# parameter subdomains, data-parallel over the remaining ranks). Beyond the core count the
# ranks are oversubscribed: say so with the figures.
set -euo pipefail
build=$1; out=$2; shift 2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
mkdir -p "$out"
echo "# $(date -u '+%F %T') UTC, $(nproc --all) cores; ddtrain compare --problem fashion_mnist $*"
for p in ${RANKS:-1 2 4 8}; do
  solvers=${SOLVERS:-sgd,adam,tr,sapts,apts:subdomains=2,data-parallel=$(( p > 1 ? p / 2 : 1 ))}
  mpirun -np "$p" --oversubscribe "$build/ddtrain" compare --problem fashion_mnist \
    --batch-size 100 --epochs 10 --threads 1 --quiet --overwrite "$@" --solvers "$solvers" \
    --out "$out/ranks$p" >/dev/null
done
/usr/bin/python3 "$(dirname "$0")/classification_table.py" --epochs 1,5,10 "$out"/ranks*
