#!/usr/bin/env bash
# Installs every Debian package ddtrain needs to build, test, benchmark and plot.
# Usage (as root on Debian 12):  scripts/install-deps.sh [--with-bench]
#   --with-bench  also installs python3-scipy (the PyTorch comparison benchmarks only).
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libtorch-dev                 # LibTorch 1.13 (CPU)
  libopenblas0-openmp          # fast libblas.so.3 for LibTorch; shares LibTorch's OpenMP pool
  libopenmpi-dev openmpi-bin   # MPI launch, CPU collectives
  libeigen3-dev                # small dense algebra, FFT for the reference solver
  libboost-program-options-dev # the CLI and config files
  libgtest-dev                 # tests
  zlib1g-dev                   # gzip'd IDX files
  libmatio-dev                 # MATLAB .mat reference files
  nlohmann-json3-dev           # summary.json, checkpoints' metadata
  doxygen                      # the API reference (`docs` target)
  dataset-fashion-mnist        # real Fashion-MNIST under /usr/share/datasets/fashion-mnist
  python3-matplotlib python3-numpy  # ddtrain plot
  python3-dev pybind11-dev python3-torch  # the Python package `ddtrain` (python/; same libtorch1.13)
  python3-pytest               # its tests (tests/python)
)
if [[ "${1:-}" == "--with-bench" ]]; then
  packages+=(python3-scipy)
fi

if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# LibTorch must call OpenBLAS, not the reference BLAS (5-7x slower PINN steps).
if command -v update-alternatives >/dev/null; then
  alt=$(update-alternatives --list libblas.so.3-x86_64-linux-gnu 2>/dev/null | grep openblas | head -n1 || true)
  [[ -n "$alt" ]] && $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu "$alt" >/dev/null
  alt=$(update-alternatives --list liblapack.so.3-x86_64-linux-gnu 2>/dev/null | grep openblas | head -n1 || true)
  [[ -n "$alt" ]] && $SUDO update-alternatives --set liblapack.so.3-x86_64-linux-gnu "$alt" >/dev/null
fi
echo "install-deps: all packages present"
