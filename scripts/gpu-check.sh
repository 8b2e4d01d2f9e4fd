#!/usr/bin/env bash
# The GPU check in one call: builds ddtrain with the CUDA device path and the NCCL backend
# against the machine's CUDA LibTorch, runs every test (all CPU tests, the GPU tests, the MPI
# tests under mpirun), prints the versions, then runs the benchmark of issue 22 (items 4-5,
# bench/gpu_benchmark.sh: ddtrain vs the machine's CUDA PyTorch, eager and torch.compile, on the
# Allen–Cahn PINN at N_f 10k-1M, float32 and float64, and the same sizes on the CPU cores;
# about 4 minutes on an H200). The benchmark runs even when a test failed, so that one session on
# a GPU machine brings back both. Exit status: 0 all passed; 1 a build or test failure (the
# failures are listed at the end), including GPU tests that skipped although a GPU is present;
# 3 no GPU visible (the build and CPU tests passed, nothing ran on a GPU); 4 the tests passed but
# a benchmark run failed or hit its time limit (the rows it had are kept).
#
# Usage:  scripts/gpu-check.sh [BUILD_DIR]          (default: build-gpu)
# Output: the logs ctest.log, gpu-tests.log, cuda-kernel-tests.log and the benchmark's
#   bench.md (tables and the summary against the targets), bench-rows.csv and bench.err go to
#   $OUT (the folder a device machine sends back: six files), else BUILD_DIR/gpu-check-out.
# Environment (all optional):
#   TORCH_PYTHON  python of the CUDA LibTorch      (default /opt/torch/.venv/bin/python)
#   CUDA_HOME     CUDA toolkit with nccl.h/libnccl (default /usr/local/cuda)
#   JOBS          build and ctest parallelism      (default: nproc)
#   SKIP_BUILD=1  only run the tests of an existing BUILD_DIR
#   CTEST_ARGS    extra ctest arguments, e.g. "-R Nccl"
#   SKIP_APT=1    do not try apt-get for missing packages (a machine without network)
#   EXTRA_CMAKE_PREFIX_PATH  more prefixes for find_package (packages unpacked elsewhere)
#   GPU_TESTS     gtest filter of the unit tests that need a GPU and must not skip when one is
#                 visible (default '*OnDevice.*': GPU test suites are named ...OnDevice); the
#                 CUDA kernel tests (tests/ddtrain_cuda_tests) run whole and must not skip either
#   SKIP_BENCH=1  do not run the benchmark; BENCH_THREADS its host and CPU threads (nproc);
#                 the other knobs of bench/gpu_benchmark.sh (RUNS, NF, CPU_NF, GPU_LIMIT, ...)
#                 pass through
#
# What it assumes of the GPU machine (it has no network, so nothing can be downloaded):
#   Ubuntu 24.04, an NVIDIA driver + GPU, the CUDA toolkit and NCCL under $CUDA_HOME, a CUDA
#   build of PyTorch 2.x in /opt/torch/.venv (its share/cmake gives LibTorch), cmake >= 3.18,
#   ninja (else make), a C++17 compiler, and these distribution packages:
#     libeigen3-dev libboost-program-options-dev libgtest-dev libmatio-dev nlohmann-json3-dev
#     zlib1g-dev libopenmpi-dev openmpi-bin pkg-config
#   Missing packages are installed with apt-get when apt works there (local mirror or cache);
#   otherwise they are named and the configure step reports what CMake could not find.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${1:-build-gpu}
TORCH_PYTHON=${TORCH_PYTHON:-/opt/torch/.venv/bin/python}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
JOBS=${JOBS:-$(nproc)}
export PATH="$CUDA_HOME/bin:$PATH"
export CUDACXX=${CUDACXX:-$CUDA_HOME/bin/nvcc}  # LibTorch's CMake enables the CUDA language
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [[ $(id -u) -eq 0 ]]; then  # mpirun refuses root without these (the device machine runs as root)
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

OUT_DIR=${OUT:-$BUILD_DIR/gpu-check-out}  # $OUT: the folder a device machine sends back
mkdir -p "$OUT_DIR"

section() { printf '\n==== %s\n' "$*"; }
fail() { printf '\ngpu-check: FAILED: %s\n' "$*" >&2; exit 1; }
# A test failure: reported now and at the end; the script goes on to the benchmark.
failures=()
failed() { printf '\ngpu-check: FAILED: %s\n' "$*" >&2; failures+=("$*"); }

section "versions"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap --format=csv,noheader ||
    echo "nvidia-smi: failed"
else
  echo "nvidia-smi: not found"
fi
if command -v nvcc >/dev/null; then nvcc --version | tail -n 2; else echo "nvcc: not found in $CUDA_HOME/bin"; fi
nccl_header="$CUDA_HOME/include/nccl.h"
[[ -f $nccl_header ]] || nccl_header=/usr/include/nccl.h  # distribution packages (libnccl-dev)
if [[ -f $nccl_header ]]; then
  awk '/#define NCCL_(MAJOR|MINOR|PATCH) /{v[$2]=$3} END{printf "NCCL (nccl.h): %s.%s.%s\n", v["NCCL_MAJOR"], v["NCCL_MINOR"], v["NCCL_PATCH"]}' "$nccl_header"
else
  echo "NCCL: no nccl.h in $CUDA_HOME/include or /usr/include"
fi
[[ -x $TORCH_PYTHON ]] || fail "no python at TORCH_PYTHON=$TORCH_PYTHON (set it to the CUDA PyTorch's python)"
"$TORCH_PYTHON" - <<'PY'
import torch
print(f"torch {torch.__version__}, built with CUDA {torch.version.cuda}, "
      f"cxx11 ABI {torch._C._GLIBCXX_USE_CXX11_ABI}, visible GPUs {torch.cuda.device_count()}")
if torch.cuda.is_available():
    print(f"torch's NCCL {'.'.join(map(str, torch.cuda.nccl.version()))}")
PY
cmake --version | head -n 1
command -v ninja >/dev/null && echo "ninja $(ninja --version)"
command -v mpirun >/dev/null && mpirun --version 2>/dev/null | head -n 1
c++ --version | head -n 1

gpu_count=0
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  gpu_count=$(nvidia-smi -L | grep -c '^GPU ' || true)
fi
echo "GPUs: $gpu_count"

section "dependencies"
packages=(libeigen3-dev libboost-program-options-dev libgtest-dev libmatio-dev nlohmann-json3-dev
          zlib1g-dev libopenmpi-dev openmpi-bin pkg-config)
missing=()
if command -v dpkg-query >/dev/null; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if ((${#missing[@]})) && [[ ${SKIP_APT:-0} == 1 ]]; then
  echo "not installed as packages: ${missing[*]} (SKIP_APT=1: not trying apt-get; CMake will say what it cannot find)"
elif ((${#missing[@]})); then
  echo "missing: ${missing[*]}"
  SUDO=; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  if timeout 120 $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
     { timeout 120 $SUDO apt-get update -qq && timeout 300 $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; then
    echo "installed: ${missing[*]}"
  else
    echo "apt-get could not install them (no network?); configuring anyway, CMake will say what is missing"
  fi
else
  echo "all present: ${packages[*]}"
fi

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  section "configure"
  torch_prefix=$("$TORCH_PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  generator=(); command -v ninja >/dev/null && generator=(-G Ninja)
  if [[ -z ${TORCH_CUDA_ARCH_LIST:-} ]] && command -v nvidia-smi >/dev/null; then
    # LibTorch's CMake otherwise guesses the architectures (and warns); take the GPU's own.
    TORCH_CUDA_ARCH_LIST=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | sort -u | paste -sd';' || true)
    export TORCH_CUDA_ARCH_LIST
  fi
  if [[ -f $BUILD_DIR/CMakeCache.txt ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja' "$BUILD_DIR/CMakeCache.txt" &&
     ((${#generator[@]})); then
    fail "$BUILD_DIR was configured with another generator; remove it or pass another BUILD_DIR"
  fi
  mkdir -p "$BUILD_DIR"
  configure_log="$BUILD_DIR/configure.log"
  cmake -S . -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DDDTRAIN_WITH_CUDA=ON -DDDTRAIN_WITH_MPI=ON -DDDTRAIN_WITH_NCCL=ON \
        -DCMAKE_PREFIX_PATH="$torch_prefix${EXTRA_CMAKE_PREFIX_PATH:+;$EXTRA_CMAKE_PREFIX_PATH}" -DCUDAToolkit_ROOT="$CUDA_HOME" 2>&1 | tee "$configure_log" ||
    fail "configure (see $configure_log)"
  grep -q 'ddtrain: .*NCCL=ON .*LibTorch CUDA=ON' "$configure_log" ||
    fail "configure did not enable NCCL with a CUDA LibTorch (status line above)"

  section "build"
  cmake --build "$BUILD_DIR" --parallel "$JOBS" || fail "build"
fi

section "tests"
ctest --test-dir "$BUILD_DIR" --output-on-failure --parallel "$JOBS" --timeout 900 ${CTEST_ARGS:-} 2>&1 |
  tee "$OUT_DIR/ctest.log" || failed "ctest (log: $OUT_DIR/ctest.log)"

if ((gpu_count > 0)); then
  section "GPU tests must have run, not skipped"
  gpu_log="$OUT_DIR/gpu-tests.log"
  "$BUILD_DIR/tests/ddtrain_unit_tests" --gtest_filter="${GPU_TESTS:-*OnDevice.*}" \
    2>&1 | tee "$gpu_log" || failed "GPU unit tests"
  if grep -q '^\[  SKIPPED \]' "$gpu_log"; then failed "GPU tests skipped although $gpu_count GPU(s) are visible"; fi
  grep -q '^\[  PASSED  \] [1-9]' "$gpu_log" || failed "no GPU unit test ran"
  # The fused Allen–Cahn CUDA kernels against their host executor (torch-free binary).
  cuda_kernels_log="$OUT_DIR/cuda-kernel-tests.log"
  if [[ -x $BUILD_DIR/tests/ddtrain_cuda_tests ]]; then
    "$BUILD_DIR/tests/ddtrain_cuda_tests" 2>&1 | tee "$cuda_kernels_log" || failed "CUDA kernel tests"
    if grep -q '^\[  SKIPPED \]' "$cuda_kernels_log"; then
      failed "CUDA kernel tests skipped although $gpu_count GPU(s) are visible"
    fi
    grep -q '^\[  PASSED  \] [1-9]' "$cuda_kernels_log" || failed "no CUDA kernel test ran"
  else
    failed "no $BUILD_DIR/tests/ddtrain_cuda_tests (DDTRAIN_WITH_CUDA off?)"
  fi
fi

section "benchmark"
bench=skipped
if [[ ${SKIP_BENCH:-0} == 1 ]]; then
  echo "SKIP_BENCH=1: not run"
elif ((gpu_count == 0)); then
  echo "no GPU visible: not run"
else
  # bench/gpu_benchmark.sh prints its progress and the summary; everything else goes to $OUT_DIR.
  if PYTHON="$TORCH_PYTHON" THREADS="${BENCH_THREADS:-$(nproc)}" \
       bash bench/gpu_benchmark.sh "$BUILD_DIR" "$OUT_DIR"; then
    bench=passed
  else
    bench=failed
  fi
fi

section "result"
if ((${#failures[@]})); then
  printf '  %s\n' "${failures[@]}" >&2
  fail "${#failures[@]} check(s) above (benchmark: $bench)"
fi
if ((gpu_count == 0)); then
  echo "gpu-check: no GPU visible, so the GPU tests skipped: this run checks the build only" >&2
  exit 3
fi
if [[ $bench == failed ]]; then
  printf '\ngpu-check: the tests passed; the benchmark FAILED (a run failed or hit its limit: %s/bench.md, bench.err)\n' \
    "$OUT_DIR" >&2
  exit 4
fi
section "gpu-check: all passed (benchmark: $bench)"
