#!/usr/bin/python3
"""Markdown table of classification runs (ddtrain compare/train output directories): test
accuracy after the given epochs, wall seconds per epoch, gradient evaluations per epoch.

    bench/classification_table.py [--epochs 1,5,10] DIR [DIR ...]

Each DIR is a run directory (summary.json + history.csv) or a compare directory of them.
"""
import argparse
import csv
import json
import pathlib


def runs(paths):
    for p in map(pathlib.Path, paths):
        if (p / "summary.json").exists():
            yield p
        else:
            yield from sorted(q.parent for q in p.glob("*/summary.json"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", default="1,5,10")
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args()
    marks = [int(e) for e in args.epochs.split(",")]
    print("| method | model | ranks | " + " | ".join(f"accuracy after {e}" for e in marks) +
          " | s / epoch | global grad evals / epoch | local grad evals / epoch (rank 0) |")
    print("|---|---|---|" + "---|" * len(marks) + "---|---|---|")
    for run in runs(args.dirs):
        s = json.load(open(run / "summary.json"))
        with open(run / "history.csv") as f:
            ends = {round(float(r["epoch"]), 9): r for r in csv.DictReader(f) if r["metric"]}
        ends = {int(k): v for k, v in ends.items() if float(k).is_integer()}
        accuracy = [f"{float(ends[e]['metric']):.4f}" if e in ends else "-" for e in marks]
        last = ends[max(ends)] if ends else None
        epochs = max(ends) if ends else 0
        subdomains = s["config"].get("subdomains", "0")
        method = s["solver"] + (f" ({subdomains} subdomains)"
                                if subdomains not in ("0", str(s["ranks"])) else "")
        per_epoch = lambda key: f"{int(last[key]) / epochs:.0f}" if last else "-"
        print(f"| {method} | {s['config'].get('model', '-')} | {s['ranks']} | " +
              " | ".join(accuracy) +
              f" | {float(last['wall_time_s']) / epochs:.2f} | {per_epoch('gradient_evaluations')}"
              f" | {per_epoch('local_gradient_evaluations')} |" if last else "")


if __name__ == "__main__":
    main()
