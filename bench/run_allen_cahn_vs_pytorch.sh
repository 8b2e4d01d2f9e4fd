#!/usr/bin/env bash
# ddtrain vs PyTorch on the Allen–Cahn PINN (hard constraints; by default ResNet 6 x 40, float32):
# time of one L-BFGS iteration and one Adam step for N_f = 2000, 10000, 40000, with 1 and 2 threads.
# Both sides run in this one invocation, interleaved, REPEATS times each, with the same thread
# settings (OMP_NUM_THREADS, torch.set_num_threads / --threads, OMP_WAIT_POLICY=PASSIVE); the
# medians and the ratios ddtrain / PyTorch are printed per N_f.
#
# Usage: bench/run_allen_cahn_vs_pytorch.sh [BUILD_DIR]
# Environment: REPEATS (3), THREADS ("1 2"), NF (2000,10000,40000), ITERATIONS (10 L-BFGS
#   iterations and Adam steps timed per run), PYTORCH_TAYLOR=1 also times the PyTorch script
#   with Taylor-mode derivatives (same algorithm as ddtrain's default), MALLOC_TUNE (1, see
#   below). The network and problem, the same on both sides: MODEL (resnet; fc, modified-mlp),
#   DEPTH (6), WIDTH (40), PRECISION (float32), FOURIER (1: --fourier-modes), IC_DECAY (0:
#   --ic-decay); a ddtrain derivative mode that does not apply to MODEL (fused for modified-mlp)
#   is skipped and the reason printed. L-BFGS is compared per loss+gradient evaluation: the two
#   line searches need different numbers of evaluations per iteration (both columns are printed).
# Where it runs: DEVICE (cpu; cuda, cuda:N) for both sides (bench_allen_cahn --device,
#   pytorch_allen_cahn.py --device; on a GPU every clock is read after a device synchronize, and
#   THREADS sets the host threads); a ddtrain derivative mode that does not run there
#   (AllenCahnOptions::why_not_fused) is skipped and the reason printed. PYTHON
#   (/usr/bin/python3, Debian's python3-torch; e.g. /opt/torch/.venv/bin/python for a CUDA
#   PyTorch). COMPILE=1 adds the PyTorch rows with the loss through torch.compile (side
#   "pytorch autograd-compile", and "taylor-compile" with PYTORCH_TAYLOR=1); where torch.compile
#   is missing (torch 1.13) or fails, the reason is printed and those rows are left out (a
#   failed one is not retried in later repeats).
#   OUT_DIR: keep the raw outputs there (rows.csv: the rows so far, written as each run ends,
#   so a run stopped early still leaves them; notes; side.out: the last run's output;
#   compile.err: torch.compile's log) instead of in a temporary folder. The ratios are against
#   PyTorch eager autograd on the same DEVICE.
# Needs a PyTorch (python3-torch: scripts/install-deps.sh --with-bench).
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}  # default: Debian's python3-torch
device=${DEVICE:-cpu}
repeats=${REPEATS:-3}
threads_list=${THREADS:-1 2}
nf=${NF:-2000,10000,40000}
iterations=${ITERATIONS:-10}
network=(--model "${MODEL:-resnet}" --depth "${DEPTH:-6}" --width "${WIDTH:-40}"
         --precision "${PRECISION:-float32}" --fourier-modes "${FOURIER:-1}" --ic-decay "${IC_DECAY:-0}")
if [[ -n "${OUT_DIR:-}" ]]; then
  raw=$OUT_DIR
  mkdir -p "$raw"
  rm -f "$raw/rows.csv" "$raw/notes" "$raw/side.out" "$raw/compile.err"
else
  raw=$(mktemp -d)
  trap 'rm -rf "$raw"' EXIT
fi
: > "$raw/rows.csv"
: > "$raw/notes"

echo "# $(date -u '+%F %T') UTC; $(uname -srm); nproc $(getconf _NPROCESSORS_ONLN); load $(cut -d' ' -f1-3 /proc/loadavg)"
linked=$(ldd "$build/bench/bench_allen_cahn" 2>/dev/null | awk '/libtorch_cpu/ {print $3}' || true)
echo "# libtorch $(dpkg-query -W -f='${Version}' libtorch-dev 2>/dev/null || echo '?') (bench_allen_cahn links ${linked:-?}),"\
     "PyTorch $("$python" -c 'import torch; print(torch.__version__)') ($python)," \
     "BLAS $(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu 2>/dev/null || echo '?')"
echo "# device $device, COMPILE=${COMPILE:-0}, PYTORCH_TAYLOR=${PYTORCH_TAYLOR:-0}, NF $nf, ITERATIONS $iterations"
export OMP_WAIT_POLICY=PASSIVE
# glibc returns large freed blocks to the kernel by default, so every big tensor of every
# evaluation is page-faulted in again; MALLOC_TUNE=1 (default) keeps them, for BOTH sides.
if [[ "${MALLOC_TUNE:-1}" == 1 ]]; then
  export MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=4000000000 MALLOC_TOP_PAD_=268435456
fi
echo "# OMP_WAIT_POLICY=PASSIVE, MALLOC_TUNE=${MALLOC_TUNE:-1}, repeats $repeats, threads $threads_list"
echo "# network and problem (both sides): ${network[*]}"
# keep_rows FILE SED: a side's CSV rows, tagged by SED, into rows.csv; its comment lines (network,
# parameter count, skipped modes; the header of the columns excepted) into notes, printed once.
keep_rows() {
  grep '^#' "$1" | grep -v '^# nf,' >> "$raw/notes" || true
  { grep -v '^#' "$1" || true; } | sed "$2" >> "$raw/rows.csv"
}
# pytorch_side THREADS LABEL ARGS...: one run of the PyTorch script, its rows tagged LABEL.
pytorch_side() {
  local threads=$1 label=$2
  shift 2
  "$python" "$here/pytorch_allen_cahn.py" --device "$device" --threads "$threads" --nf ${nf//,/ } \
    "${network[@]}" --lbfgs-iterations "$iterations" --adam-steps "$((iterations + 1))" "$@" > "$raw/side.out" ||
    return
  keep_rows "$raw/side.out" "s/^\([0-9]*\),/pytorch,$threads,\1,$label,/"
}
pytorch_modes=(autograd)
if [[ "${PYTORCH_TAYLOR:-0}" == 1 ]]; then pytorch_modes+=(taylor); fi
declare -A compile_failed=()  # derivatives whose torch.compile failed: not tried again
for threads in $threads_list; do
  export OMP_NUM_THREADS=$threads
  for ((r = 0; r < repeats; ++r)); do
    "$build/bench/bench_allen_cahn" --device "$device" --threads "$threads" --nf "$nf" "${network[@]}" \
      --lbfgs-iterations "$iterations" --adam-steps "$((iterations + 1))" > "$raw/side.out"
    keep_rows "$raw/side.out" "s/^/ddtrain,$threads,/"
    for mode in "${pytorch_modes[@]}"; do
      pytorch_side "$threads" "$mode" --derivatives "$mode"
    done
    if [[ "${COMPILE:-0}" == 1 ]]; then
      for mode in "${pytorch_modes[@]}"; do
        [[ -z "${compile_failed[$mode]:-}" ]] || continue
        # torch.compile's own log (its warnings, the traceback of a failure) goes to compile.err.
        echo "=== $(date -u '+%T') threads $threads, repeat $r, --derivatives $mode --compile" >> "$raw/compile.err"
        status=0
        pytorch_side "$threads" "$mode-compile" --derivatives "$mode" --compile 2>> "$raw/compile.err" || status=$?
        if ((status != 0)); then
          echo "# --compile, --derivatives $mode: the PyTorch script exited with status $status" \
               "(its stderr: compile.err); rows skipped" >> "$raw/notes"
          tail -n 5 "$raw/compile.err" >&2
          compile_failed[$mode]=1
        elif grep -q '^# --compile.*rows skipped' "$raw/side.out"; then
          compile_failed[$mode]=1
        fi
      done
    fi
  done
done
echo "# finished $(date -u '+%F %T') UTC; load $(cut -d' ' -f1-3 /proc/loadavg)"
sort -u "$raw/notes"
echo "## device: $device"
echo "## raw rows: side,threads,nf,derivatives,lbfgs_ms_per_iteration,evaluations_per_iteration,adam_ms_per_step,lbfgs_cpu_ms_per_iteration,adam_cpu_ms_per_step"
cat "$raw/rows.csv"
"$python" - "$raw/rows.csv" <<'EOF'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    side, threads, nf, mode, *values = line.strip().split(",")
    rows[(side, mode, int(threads), int(nf))].append([float(v) for v in values])
med = {k: [statistics.median(v[i] for v in vs) for i in range(5)] for k, vs in rows.items()}
print("## medians (ms) and ratios ddtrain / PyTorch (eager autograd, its usual PINN form)")
print("wall = elapsed time, cpu = process CPU time (all threads; robust against other load)")
print("| threads | N_f | side | L-BFGS wall/iter | evals/iter | L-BFGS wall/eval | Adam wall/step | "
      "L-BFGS cpu/iter | Adam cpu/step | ratio L-BFGS wall/eval | ratio Adam wall | "
      "ratio L-BFGS cpu/eval | ratio Adam cpu |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for key in sorted(med, key=lambda k: (k[2], k[3], k[0], k[1])):
    side, mode, threads, nf = key
    lbfgs, evals, adam, lbfgs_cpu, adam_cpu = med[key]
    b = med.get(("pytorch", "autograd", threads, nf))
    ratios = ["", "", "", ""]
    if b:
        ratios = [f"{(lbfgs / evals) / (b[0] / b[1]):.2f}", f"{adam / b[2]:.2f}",
                  f"{(lbfgs_cpu / evals) / (b[3] / b[1]):.2f}", f"{adam_cpu / b[4]:.2f}"]
    print(f"| {threads} | {nf} | {side} {mode} | {lbfgs:.1f} | {evals:.2f} | {lbfgs / evals:.1f} | "
          f"{adam:.1f} | {lbfgs_cpu:.1f} | {adam_cpu:.1f} | {' | '.join(ratios)} |")
EOF
