#!/usr/bin/env python3
"""Renders the convergence plots of ddtrain runs (and, for Allen-Cahn, the solution heatmaps).

Usage: ddtrain_plot.py DIR [--format png|svg] [--out PLOTDIR]

DIR is a run directory (history.csv, summary.json) or a `ddtrain compare` directory (one run
per sub-directory). Writes PLOTDIR/convergence.<fmt> (loss and metric against wall time and
against gradient evaluations, global + subdomain-local, or for classification against epochs,
one line per run, log scale) and, when the best run wrote field.csv,
PLOTDIR/solution.<fmt> (reference, prediction, error). Default PLOTDIR: DIR/plots.
Works without a display (Agg backend). Called by `ddtrain plot`.
"""
import argparse
import csv
import json
import math
import os
import sys
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def fail(message):
    print(f"ddtrain plot: error: {message}", file=sys.stderr)
    sys.exit(1)


def read_history(path):
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            def num(key):
                value = row.get(key, "")
                return float(value) if value not in ("", None) else math.nan
            r = {k: num(k) for k in ("iteration", "epoch", "wall_time_s", "loss", "metric",
                                     "gradient_evaluations", "local_gradient_evaluations")}
            # One axis for every method: all gradient evaluations, global and subdomain-local.
            r["evaluations"] = r["gradient_evaluations"] + (
                0 if math.isnan(r["local_gradient_evaluations"]) else r["local_gradient_evaluations"])
            rows.append(r)
    return rows


def find_runs(directory):
    """[(label, run_dir, summary)] in the order of the comparison (sub-directory names start
    with the entry's number) or the single run."""
    def load(run_dir):
        with open(os.path.join(run_dir, "summary.json")) as f:
            return json.load(f)

    if os.path.isfile(os.path.join(directory, "history.csv")):
        summary = load(directory) if os.path.isfile(os.path.join(directory, "summary.json")) else {}
        label = summary.get("solver", os.path.basename(os.path.normpath(directory)))
        return [(label, directory, summary)]
    runs = []
    for name in os.listdir(directory):
        run_dir = os.path.join(directory, name)
        # A run still going (`ddtrain plot --watch`) has no summary.json yet.
        if os.path.isfile(os.path.join(run_dir, "history.csv")):
            # `ddtrain compare` numbers its runs "1-adam", ...; other names are the label.
            number, _, rest = name.partition("-")
            order, label = (int(number), rest or name) if number.isdigit() else (10**9, name)
            finished = os.path.isfile(os.path.join(run_dir, "summary.json"))
            runs.append((order, label, run_dir, load(run_dir) if finished else {}))
    runs.sort(key=lambda r: (r[0], r[1]))
    # The labels as given to `ddtrain compare` (sub-directory names have them sanitized).
    table = os.path.join(directory, "comparison.csv")
    if os.path.isfile(table):
        with open(table, newline="") as f:
            labels = [row["run"] for row in csv.DictReader(f)]
        if len(labels) == len(runs):
            runs = [(o, labels[i], d, s) for i, (o, _, d, s) in enumerate(runs)]
    return [(label, run_dir, summary) for _, label, run_dir, summary in runs]


def smoothed(values, window):
    """Running mean over `window` values (mini-batch losses are noisy)."""
    if window <= 1:
        return values
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def convergence(runs, path):
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    metric_name = "metric"
    # Classification is compared per epoch (the same data seen), PINNs per gradient evaluation.
    by_epoch = any(summary.get("metric_name") == "accuracy" for _, _, summary in runs)
    cost = "epoch" if by_epoch else "evaluations"
    for label, run_dir, summary in runs:
        rows = read_history(os.path.join(run_dir, "history.csv"))
        if not rows:
            continue
        metric_name = summary.get("metric_name") or metric_name
        loss = [(r["wall_time_s"], r[cost], r["loss"]) for r in rows if r["loss"] > 0]
        metric = [(r["wall_time_s"], r[cost], r["metric"]) for r in rows
                  if not math.isnan(r["metric"])]
        # The final metric (evaluated at the end of every run) closes the curve.
        if isinstance(summary.get("metric"), (int, float)) and summary.get("wall_time_s") is not None:
            last = (summary["wall_time_s"], rows[-1][cost], summary["metric"])
            if not metric or metric[-1][1] != last[1]:
                metric.append(last)
        window = len(loss) // 100 if summary.get("metric_name") == "accuracy" else 1
        loss_values = smoothed([p[2] for p in loss], window)
        if window > 1:
            label_loss = f"{label} (mean of {window})"
        else:
            label_loss = label
        for column, x_index in ((0, 0), (1, 1)):
            if loss:
                axes[0][column].plot([p[x_index] for p in loss], loss_values, label=label_loss)
            if metric:
                axes[1][column].plot([p[x_index] for p in metric], [p[2] for p in metric],
                                     marker=".", label=label)
    higher_is_better = metric_name == "accuracy"
    for row, name in ((0, "loss"), (1, metric_name)):
        for column, xlabel in ((0, "wall time [s]"),
                               (1, "epochs" if by_epoch else "gradient evaluations (global + local)")):
            ax = axes[row][column]
            ax.set_xlabel(xlabel)
            ax.set_ylabel(name)
            if not (row == 1 and higher_is_better):
                ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
    fig.suptitle(os.path.basename(os.path.normpath(os.path.dirname(os.path.dirname(path)))))
    save(fig, path)


def read_field(path):
    xs, ts, values = set(), set(), {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            x, t = float(row["x"]), float(row["t"])
            xs.add(x)
            ts.add(t)
            values[(x, t)] = (float(row["u_ref"]), float(row["u_pred"]), float(row["error"]))
    xs, ts = sorted(xs), sorted(ts)
    grids = [[[values[(x, t)][k] for t in ts] for x in xs] for k in range(3)]
    return xs, ts, grids


def solution(field_csv, title, path):
    xs, ts, (ref, pred, err) = read_field(field_csv)
    extent = [ts[0], ts[-1], xs[0], xs[-1]]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    # The prediction on the reference's colour scale: a wrong amplitude shows as a wrong colour.
    scale = (min(min(column) for column in ref), max(max(column) for column in ref))
    for ax, grid, name, cmap, limits in ((axes[0], ref, "reference u", "RdBu_r", scale),
                                         (axes[1], pred, "prediction", "RdBu_r", scale),
                                         (axes[2], err, "|error|", "viridis", (None, None))):
        image = ax.imshow(grid, origin="lower", aspect="auto", extent=extent, cmap=cmap,
                          vmin=limits[0], vmax=limits[1])
        ax.set_xlabel("t")
        ax.set_ylabel("x")
        ax.set_title(name)
        fig.colorbar(image, ax=ax)
    fig.suptitle(title)
    save(fig, path)


def save(fig, path):
    # Atomic: a half-written picture never replaces a good one.
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=os.path.splitext(path)[1])
    os.close(handle)
    fig.savefig(temporary, dpi=110)
    plt.close(fig)
    # mkstemp makes the file 0600; a picture is as readable as any file the user creates.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    os.replace(temporary, path)
    print(f"written: {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--format", choices=("png", "svg"), default="png")
    parser.add_argument("--out", help="where the pictures go (default DIR/plots)")
    args = parser.parse_args()
    if not os.path.isdir(args.directory):
        fail(f"'{args.directory}' is not a directory")
    runs = find_runs(args.directory)
    if not runs:
        fail(f"'{args.directory}' holds no run (no history.csv and summary.json in it or its "
             "sub-directories)")
    out = args.out or os.path.join(args.directory, "plots")
    os.makedirs(out, exist_ok=True)
    convergence(runs, os.path.join(out, f"convergence.{args.format}"))
    with_field = [(label, run_dir, s) for label, run_dir, s in runs
                  if os.path.isfile(os.path.join(run_dir, "field.csv")) and s.get("metric") is not None]
    if with_field:
        sign = -1 if with_field[0][2].get("metric_name") == "accuracy" else 1
        label, run_dir, s = min(with_field, key=lambda r: sign * r[2]["metric"])
        solution(os.path.join(run_dir, "field.csv"),
                 f"best run: {label} ({s.get('metric_name')} {s['metric']:.3g})",
                 os.path.join(out, f"solution.{args.format}"))


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        fail(str(error))
