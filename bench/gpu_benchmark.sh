#!/usr/bin/env bash
# Issue 22, items 4-5: ddtrain vs PyTorch on the Allen–Cahn PINN (ResNet 6 x 40, hard
# constraints; the same network, points and precision on both sides) on one GPU, and the same
# sizes on the machine's CPU cores. Three runs of bench/run_allen_cahn_vs_pytorch.sh, each under
# a time limit, then a summary against the issue's targets:
#   gpu-float32  DEVICE=$GPU, N_f $NF, REPEATS 3, ITERATIONS 5, PyTorch eager (autograd and
#                Taylor mode) and torch.compile (COMPILE=1: where it works)
#   cpu-float32  DEVICE=cpu, THREADS cores, N_f $CPU_NF (1,000,000 left out by default: about
#                a minute more at 16 cores, and a GPU that is faster at 160,000 is faster there
#                too), REPEATS 1, ITERATIONS 3: the "faster than the 16 CPU cores" comparison
#   gpu-float64  DEVICE=$GPU, float64, N_f $NF, REPEATS 1, eager only
# Targets (at N_f 10,000, float32): ddtrain <= 1 ms per L-BFGS iteration and <= 0.1 x PyTorch
# eager (per loss+gradient evaluation: the two line searches need different numbers of
# evaluations per iteration; per iteration also shown); faster on the GPU than on the CPU cores
# at every size.
#
# Usage: bench/gpu_benchmark.sh [BUILD_DIR] [OUT_DIR]    (defaults: build-gpu, BUILD_DIR/gpu-check-out)
# OUT_DIR receives three files (appended to, as the device machine returns few files):
#   bench.md        each run's output (header, notes, raw rows, table) and the summary
#   bench-rows.csv  run,side,threads,nf,derivatives,<the run script's columns>: all rows, also
#                   those of a run stopped at its time limit
#   bench.err       the runs' stderr, torch.compile's log included
# Environment (all optional): PYTHON (the CUDA PyTorch's python; default TORCH_PYTHON, else
#   /opt/torch/.venv/bin/python, else /usr/bin/python3), GPU (cuda; cpu rehearses the script on
#   a machine without one), THREADS (nproc: host threads of every run and the CPU run's cores),
#   NF (10000,40000,160000,1000000), CPU_NF (10000,40000,160000), RUNS ("gpu-float32
#   cpu-float32 gpu-float64"), GPU_REPEATS (3), GPU_ITERATIONS (5), CPU_REPEATS (1),
#   CPU_ITERATIONS (3), COMPILE (1), and the time limits in seconds GPU_LIMIT (240), CPU_LIMIT
#   (120), F64_LIMIT (75): at most 7.5 minutes in all. Expected on an H200 with 16 cores
#   (estimates, not yet measured): about 3 + 0.5 + 0.5 minutes; most of gpu-float32 is process
#   start-up (5 processes a repeat: ddtrain, PyTorch eager autograd and Taylor, each compiled)
#   and the first torch.compile (perhaps a minute; later repeats reuse its cache; a form that
#   fails to compile is not tried again). A run stopped at its limit keeps the rows of the
#   processes that finished.
# Exit status 0 when every run finished, 1 otherwise (the summary is printed either way).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-build-gpu}
out=${2:-$build/gpu-check-out}
python=${PYTHON:-${TORCH_PYTHON:-/opt/torch/.venv/bin/python}}
[[ -x $python ]] || python=/usr/bin/python3
gpu=${GPU:-cuda}
threads=${THREADS:-$(nproc)}
nf=${NF:-10000,40000,160000,1000000}
cpu_nf=${CPU_NF:-10000,40000,160000}
runs=${RUNS:-gpu-float32 cpu-float32 gpu-float64}
mkdir -p "$out"
columns=lbfgs_ms_per_iteration,evaluations_per_iteration,adam_ms_per_step,lbfgs_cpu_ms_per_iteration,adam_cpu_ms_per_step
[[ -s $out/bench-rows.csv ]] || echo "# run,side,threads,nf,derivatives,$columns" > "$out/bench-rows.csv"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[[ -x $build/bench/bench_allen_cahn ]] || { echo "gpu_benchmark: no $build/bench/bench_allen_cahn" >&2; exit 1; }

failed=()
# run NAME LIMIT VAR=VALUE...: one run of the comparison script under `timeout`.
run() {
  local name=$1 limit=$2 status=0 start=$SECONDS
  shift 2
  echo "== $name: $* (limit ${limit} s)"
  { echo; echo "## run $name: $*, limit ${limit} s"; } >> "$out/bench.md"
  env PYTHON="$python" THREADS="$threads" OUT_DIR="$work/$name" "$@" \
    timeout -k 10 "$limit" bash "$here/run_allen_cahn_vs_pytorch.sh" "$build" >> "$out/bench.md" 2> "$work/$name.err" ||
    status=$?
  { echo "== $name: stderr"; cat "$work/$name.err"; } >> "$out/bench.err"
  if [[ -f $work/$name/rows.csv ]]; then
    sed "s/^/$name,/" "$work/$name/rows.csv" >> "$out/bench-rows.csv"
  fi
  if [[ -f $work/$name/compile.err ]]; then
    { echo "== $name: torch.compile's log"; cat "$work/$name/compile.err"; } >> "$out/bench.err"
  fi
  if ((status != 0)); then
    local why="exit status $status"
    ((status == 124)) && why="stopped at its limit of $limit s"
    failed+=("$name ($why)")
    echo "   $name: FAILED, $why; its rows so far are kept. Last lines of its stderr:"
    tail -n 5 "$work/$name.err" | sed 's/^/     /'
    { echo "## run $name FAILED ($why); its notes and rows so far:"; cat "$work/$name/notes" 2>/dev/null || true
      cat "$work/$name/rows.csv" 2>/dev/null || true; } >> "$out/bench.md"
  else
    echo "   $name: done in $((SECONDS - start)) s, $(wc -l < "$work/$name/rows.csv") rows"
  fi
}

echo "# gpu_benchmark $(date -u '+%F %T') UTC: build $build, python $python, GPU device '$gpu', threads $threads" |
  tee -a "$out/bench.md"
[[ $gpu == cpu ]] && echo "# GPU=cpu: a rehearsal of the script, the 'gpu' runs run on the CPU" | tee -a "$out/bench.md"
for name in $runs; do
  case $name in
    gpu-float32)
      run "$name" "${GPU_LIMIT:-240}" DEVICE="$gpu" PRECISION=float32 NF="$nf" REPEATS="${GPU_REPEATS:-3}" \
        ITERATIONS="${GPU_ITERATIONS:-5}" COMPILE="${COMPILE:-1}" PYTORCH_TAYLOR=1 ;;
    cpu-float32)
      run "$name" "${CPU_LIMIT:-120}" DEVICE=cpu PRECISION=float32 NF="$cpu_nf" REPEATS="${CPU_REPEATS:-1}" \
        ITERATIONS="${CPU_ITERATIONS:-3}" COMPILE=0 PYTORCH_TAYLOR=0 ;;
    gpu-float64)
      run "$name" "${F64_LIMIT:-75}" DEVICE="$gpu" PRECISION=float64 NF="$nf" REPEATS=1 \
        ITERATIONS="${GPU_ITERATIONS:-5}" COMPILE=0 PYTORCH_TAYLOR=0 ;;
    *) echo "gpu_benchmark: unknown run '$name' (known: gpu-float32 cpu-float32 gpu-float64)" >&2; exit 2 ;;
  esac
done

"$python" - "$out/bench-rows.csv" "$threads" "$runs" <<'EOF' | tee -a "$out/bench.md"
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    run, side, threads, nf, mode, *values = line.strip().split(",")
    rows[(run, side, mode, int(nf))].append([float(v) for v in values])
# median per (run, side, mode, nf) of: L-BFGS ms/iteration, evaluations/iteration, Adam ms/step
med = {k: [statistics.median(v[i] for v in vs) for i in range(3)] for k, vs in rows.items()}
per_eval = lambda m: m[0] / m[1]  # noqa: E731

def best(run, side, nf, modes=None):
    """(mode, medians) of the fastest mode per evaluation, or None."""
    found = [(mode, m) for (r, s, mode, n), m in med.items()
             if r == run and s == side and n == nf and (modes is None or mode in modes)]
    return min(found, key=lambda f: per_eval(f[1])) if found else None

def fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"

print(f"\n## summary: medians in ms; ddtrain's and PyTorch's best mode per loss+gradient evaluation; "
      f"CPU = ddtrain on {sys.argv[2]} thread(s)")
verdicts = []
for precision in ("float32", "float64"):
    gpu_run = f"gpu-{precision}"
    sizes = sorted({n for (r, _, _, n) in med if r == gpu_run})
    if not sizes:
        if gpu_run in sys.argv[3].split():
            print(f"\n{gpu_run}: no rows")
        continue
    print(f"\n### {gpu_run}")
    print("| N_f | ddtrain GPU (mode) | L-BFGS ms/iter | evals/iter | ms/eval | Adam ms/step | "
          "PyTorch eager autograd ms/iter | ms/eval | Adam ms/step | best PyTorch GPU (mode) ms/eval | "
          "ratio ddtrain/eager per eval | per iter | Adam | ratio ddtrain/best PyTorch per eval | "
          "ddtrain CPU (mode) ms/eval | ratio GPU/CPU per eval |")
    print("|" + "---|" * 16)
    for n in sizes:
        d = best(gpu_run, "ddtrain", n)
        e = med.get((gpu_run, "pytorch", "autograd", n))
        p = best(gpu_run, "pytorch", n)
        c = best(f"cpu-{precision}", "ddtrain", n)
        cells = [f"{n}"]
        cells += [f"{d[0]}", fmt(d[1][0], 3), fmt(d[1][1]), fmt(per_eval(d[1]), 3), fmt(d[1][2], 3)] if d else ["-"] * 5
        cells += [fmt(e[0]), fmt(per_eval(e)), fmt(e[2])] if e else ["-"] * 3
        cells += [f"{p[0]} {per_eval(p[1]):.2f}" if p else "-"]
        r_eval = per_eval(d[1]) / per_eval(e) if d and e else None
        r_iter = d[1][0] / e[0] if d and e else None
        cells += [fmt(r_eval, 3), fmt(r_iter, 3), fmt(d[1][2] / e[2], 3) if d and e else "-"]
        cells += [fmt(per_eval(d[1]) / per_eval(p[1]), 3) if d and p else "-"]
        cells += [f"{c[0]} {per_eval(c[1]):.2f}" if c else "-"]
        r_cpu = per_eval(d[1]) / per_eval(c[1]) if d and c else None
        cells += [fmt(r_cpu, 3)]
        print("| " + " | ".join(cells) + " |")
        if precision == "float32" and n == 10000 and d:
            verdicts.append(("<= 1 ms per L-BFGS iteration at N_f 10000", d[1][0] <= 1.0, f"{d[1][0]:.3f} ms"))
            if e:
                verdicts.append(("<= 0.1 x PyTorch eager at N_f 10000 (per evaluation)", r_eval <= 0.1, f"{r_eval:.3f}"))
                verdicts.append(("<= 0.1 x PyTorch eager at N_f 10000 (per iteration)", r_iter <= 0.1, f"{r_iter:.3f}"))
        if precision == "float32" and d and c:
            verdicts.append((f"GPU faster than the CPU at N_f {n} (per evaluation)", r_cpu < 1, f"{r_cpu:.3f}"))
print("\n### targets (float32)")
for what, ok, value in verdicts or [("nothing to judge (no float32 row at N_f 10000, no CPU rows)", False, "-")]:
    print(f"- {'met   ' if ok else 'MISSED'} {what}: {value}")
EOF

if ((${#failed[@]})); then
  echo "gpu_benchmark: FAILED runs: ${failed[*]} (rows so far kept in $out/bench-rows.csv, stderr in $out/bench.err)" >&2
  exit 1
fi
echo "gpu_benchmark: all runs finished; $out/bench.md, $out/bench-rows.csv, $out/bench.err"
