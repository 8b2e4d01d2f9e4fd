"""The table of bench/pinn_comparison.sh: per problem, each run's final rel. L2 and the wall time
at which it first reached the best plain solver's final error (plain: lbfgs, bfgs)."""
import csv
import json
import pathlib
import sys

PLAIN = ("lbfgs", "bfgs")


def curve(run):
    rows = csv.DictReader(open(run / "history.csv"))
    return [(float(r["wall_time_s"]), float(r["metric"])) for r in rows if r["metric"]]


def main(out):
    out = pathlib.Path(out)
    print((out / "header.txt").read_text().strip())
    print()
    print("| problem | solver | iterations | rel. L2 at the end | reaches the best plain error at |")
    print("|---|---|---|---|---|")
    for problem in sorted(p for p in out.iterdir() if p.is_dir()):
        runs = sorted(r for r in problem.iterdir() if (r / "summary.json").exists())
        final = {r.name: json.load(open(r / "summary.json")) for r in runs}
        plain = [s["metric"] for name, s in final.items() if name in PLAIN and s["metric"] is not None]
        target = min(plain) if plain else None
        for run in runs:
            s = final[run.name]
            reached = "—"
            if target is not None:
                # The history's metric rows, then the final evaluation at the end of training.
                points = curve(run) + [(s["train_time_s"], s["metric"])]
                hit = [t for t, m in points if m <= target]
                reached = f"{hit[0]:.0f} s" if hit else "not reached"
            print(f"| {problem.name} | {run.name} | {s['iterations']} | {s['metric']:.3g} | {reached} |")


if __name__ == "__main__":
    main(sys.argv[1])
