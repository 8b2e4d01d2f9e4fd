#!/usr/bin/env bash
# Quick start, part 1: install what is missing, build, and run the main job: a small serial
# Allen-Cahn optimizer comparison (Adam, L-BFGS, preconditioned L-BFGS additive and
# multiplicative, dense SSBroyden2 quasi-Newton; 36 s each) whose table is printed and written
# to ./ddtrain-compare/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build/ddtrain compare --overwrite
