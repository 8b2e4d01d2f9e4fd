#!/usr/bin/env bash
# Quick start, part 2: install what is missing, build, and run every test (unit tests and the
# MPI tests under mpirun with 2, 3 and 4 ranks) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j 2 --timeout 900
