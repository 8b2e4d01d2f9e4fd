#!/usr/bin/env python3
"""The scaling plot of examples/data-parallel/README.md from results/scaling.csv (run.sh).

    python3 examples/data-parallel/plot_scaling.py [results/scaling.csv] [images/scaling.png]

Two panels over the rank count: time per epoch, and DeepXDE's efficiency (strong: T1 / (P TP),
weak: T1 / TP); one line per problem and scaling. Needs matplotlib (Debian: python3-matplotlib).
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    source = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "results", "scaling.csv")
    target = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "images", "scaling.png")
    with open(source) as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    series = {}
    for row in rows:
        series.setdefault((row["problem"], row["scaling"]), []).append(row)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for (problem, scaling), points in sorted(series.items()):
        ranks = [int(p["ranks"]) for p in points]
        style = "-o" if scaling == "strong" else "--s"
        label = f"{problem}, {scaling}"
        left.plot(ranks, [float(p["ms_per_epoch"]) for p in points], style, label=label)
        right.plot(ranks, [float(p["efficiency"]) for p in points], style, label=label)
    all_ranks = sorted({int(r["ranks"]) for r in rows})
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_xticks(all_ranks, [str(r) for r in all_ranks])
        axis.set_xlabel("ranks")
        axis.grid(True, alpha=0.3)
    left.set_ylabel("time per epoch (ms)")
    right.set_ylabel("efficiency")
    right.axhline(1.0, color="gray", linewidth=0.8)
    right.set_ylim(0, 1.2)
    left.legend(fontsize=8)
    fig.suptitle("Data-parallel PINN training (strong: T1/(P TP), weak: T1/TP)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fig.savefig(target, dpi=110)
    print(target)


if __name__ == "__main__":
    main()
