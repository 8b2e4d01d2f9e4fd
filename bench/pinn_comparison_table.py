"""The table of bench/pinn_comparison.sh: per problem, each run's rel. L2 at fixed wall times,
at the end, and the wall time at which it first reached the best plain solver's final error
(plain: lbfgs, bfgs), also as a fraction of the plain runs' time budget (issue 21's target is a
preconditioned run reaching it in at most half the time).

Usage: pinn_comparison_table.py OUT_DIR [SECONDS ...]   (default checkpoints: 120 600)"""
import csv
import json
import pathlib
import sys

PLAIN = ("lbfgs", "bfgs")


def given(summary):
    """The run's time limit (the wall time it was given, metric evaluations included)."""
    return float(summary["config"]["time-limit"])


def curve(run, summary):
    """(wall time, rel. L2) of the history's metric rows, then the final evaluation."""
    rows = csv.DictReader(open(run / "history.csv"))
    points = [(float(r["wall_time_s"]), float(r["metric"])) for r in rows if r["metric"]]
    if summary.get("metric") is not None:
        points.append((summary["train_time_s"], summary["metric"]))
    return points


def value_at(points, seconds, time_limit):
    """The last error measured by `seconds`; blank where the run was given less time."""
    if time_limit < seconds:
        return "—"
    seen = [m for t, m in points if t <= seconds]
    return f"{seen[-1]:.3g}" if seen else "—"


def main(out, checkpoints):
    out = pathlib.Path(out)
    print((out / "header.txt").read_text().strip())
    print()
    at = " | ".join(f"rel. L2 at {s:.0f} s" for s in checkpoints)
    print(f"| problem | solver | time given | iterations | {at} | at the end | "
          "reaches the best plain error at | / plain time |")
    print("|---|---|---|---|" + "---|" * len(checkpoints) + "---|---|---|")
    for problem in sorted(p for p in out.iterdir() if p.is_dir()):
        runs = sorted(r for r in problem.iterdir() if (r / "summary.json").exists())
        final = {r.name: json.load(open(r / "summary.json")) for r in runs}
        plain = {name: s for name, s in final.items() if name in PLAIN and s["metric"] is not None}
        target = min(s["metric"] for s in plain.values()) if plain else None
        plain_time = max(given(s) for s in plain.values()) if plain else None
        for run in runs:
            s = final[run.name]
            points = curve(run, s)
            reached, fraction = "—", "—"
            if target is not None:
                hit = [t for t, m in points if m <= target]
                reached = f"{hit[0]:.0f} s" if hit else "not reached"
                if hit:
                    fraction = f"{hit[0] / plain_time:.2f}"
            values = " | ".join(value_at(points, c, given(s)) for c in checkpoints)
            print(f"| {problem.name} | {run.name} | {given(s):.0f} s | {s['iterations']} | "
                  f"{values} | {s['metric']:.3g} | {reached} | {fraction} |")


if __name__ == "__main__":
    main(sys.argv[1], [float(s) for s in sys.argv[2:]] or [120.0, 600.0])
