#!/usr/bin/python3
"""Markdown table of a bench/plbfgs_grid.sh output directory (one row per run)."""
import csv
import json
import pathlib
import sys


def time_to(history, threshold):
    """Training wall time of the first logged metric <= threshold, or None."""
    for row in history:
        if row["metric"] and float(row["metric"]) <= threshold:
            return float(row["wall_time_s"])
    return None


def metric_at(history, iterations):
    """The last logged metric at or before `iterations` outer iterations, or None."""
    value = None
    for row in history:
        if int(row["iteration"]) > iterations:
            break
        if row["metric"]:
            value = float(row["metric"])
    return value


def fmt(value, spec):
    return "not reached" if value is None else format(value, spec)


def load_runs(root):
    """[(comparison directory name, summary, history rows)] of every run under root, read once."""
    runs = []
    for summary_path in sorted(pathlib.Path(root).glob("*/*/summary.json")):
        with open(summary_path) as f:
            summary = json.load(f)
        with open(summary_path.parent / "history.csv") as f:
            runs.append((summary_path.parent.parent.name, summary, list(csv.DictReader(f))))
    return runs


def main(runs):
    rows = []
    # Plain L-BFGS's history, for the per-iteration comparison.
    baseline = next((h for _, s, h in runs if s["solver"] == "lbfgs"), None)
    for _, s, history in runs:
        c = s["config"]
        method = s["solver"] + (" " + s["variant"] if s.get("variant") else "")
        n = c.get("subdomains", "-") if s.get("variant") else "-"
        k = c.get("local-steps", "-") if s.get("variant") else "-"
        rows.append((method, n, k, s["ranks"], s["iterations"], s["evaluations"],
                     s.get("local_evaluations", 0), s["wall_time_s"], s["final_loss"], s["metric"],
                     time_to(history, 5e-2), time_to(history, 1e-2),
                     metric_at(baseline, s["iterations"]) if baseline else None))
    rows.sort(key=lambda r: (r[0] != "lbfgs", r[0] != "adam", r[0], int(r[1]) if r[1] != "-" else 0,
                             int(r[2]) if r[2] != "-" else 0, r[3]))
    print("| method | N | k_loc | ranks | outer its | global grad evals | local grad evals (rank 0)"
          " | wall s | final loss | rel L2 | s to rel L2 <= 5e-2 | s to rel L2 <= 1e-2"
          " | plain L-BFGS rel L2 after as many iterations |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} | {r[7]:.1f} | "
              f"{r[8]:.3g} | {r[9]:.4f} | {fmt(r[10], '.1f')} | {fmt(r[11], '.1f')} | "
              f"{format(r[12], '.4f') if r[0] != 'lbfgs' and r[12] is not None else '-'} |")


def plot(runs, out):
    """rel L2 against outer iterations and wall time: the baselines and, per variant, the serial
    run of each N with k_loc = 20."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for comparison, s, history in runs:
        c = s["config"]
        if not comparison.startswith("serial-") or (s.get("variant") and c.get("local-steps") != "20"):
            continue
        label = s["solver"] + (f" {s['variant']} N={c['subdomains']} k=20" if s.get("variant") else "")
        logged = [r for r in history if r["metric"]]
        its = [int(r["iteration"]) for r in logged]
        errors = [float(r["metric"]) for r in logged]
        axes[0].plot(its, errors, label=label)
        axes[1].plot([float(r["wall_time_s"]) for r in logged], errors, label=label)
    axes[0].set(xscale="log", xlabel="outer iterations", ylabel="rel. L2 error")
    axes[1].set(xlabel="wall time [s] (serial)", ylabel="rel. L2 error")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--plot"):
        sys.exit("usage: plbfgs_grid_table.py GRID_DIR [--plot FILE.png]")
    all_runs = load_runs(sys.argv[1])
    main(all_runs)
    if len(sys.argv) == 4:
        plot(all_runs, sys.argv[3])
