#!/usr/bin/env bash
# Runs the benchmarks and prints their CSV output with the machine and versions; paste the
# figures into bench/RESULTS.md. Usage: bench/run.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "# $(date -u +%F) $(uname -m) $(nproc) cores; $(mpirun --version | head -1); libtorch $(dpkg-query -W -f='${Version}' libtorch-dev 2>/dev/null || echo '?')"
echo "## allreduce: MpiComm vs raw MPI_Allreduce, 2 ranks"
mpirun -np 2 "$build/bench/bench_allreduce"
echo "## L-BFGS iteration on Poisson 1-D, 1 rank"
"$build/bench/bench_lbfgs_poisson"
echo "## L-BFGS iteration on Poisson 1-D, 2 ranks (strong scaling)"
mpirun -np 2 "$build/bench/bench_lbfgs_poisson"
