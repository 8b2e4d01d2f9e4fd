#!/usr/bin/env bash
# What `--blocks B` costs: bench/option_cost.sh with A = no blocks, B = `--blocks B`; prints
# the median training time of each and their ratio (blocks / plain).
#
#   bench/blocks_cost.sh BUILD_DIR RANKS THREADS BLOCKS train-options...
#   e.g. bench/blocks_cost.sh build 1 2 6 --problem burgers --solver lbfgs --epochs 60
#
# Environment: REPEATS (default 3).
set -euo pipefail
build=$1; ranks=$2; threads=$3; blocks=$4; shift 4
exec "$(dirname "$0")/option_cost.sh" "$build" "$ranks" "$threads" "" "--blocks $blocks" "$@"
