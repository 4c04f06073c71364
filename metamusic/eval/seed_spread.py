"""What retraining moves a classification row by: the rows of several runs that differ in their training seed,
evaluated on one set of episodes.

    python run_relation.py --config=configs/relation.py --workdir=runs/relation_s1 --mode=train --config.seed=1
    python run_relation.py --config=configs/relation.py --workdir=runs/relation_s1 --mode=eval   # seed 0's episodes
    python -m metamusic.eval.seed_spread runs/relation runs/relation_s1 runs/relation_s2 [--out=spread.json]

An eval.md CI counts the noise of the episodes, with the trained encoders held fixed. A second training differs
in its initial weights and in the episodes it trained on, and its rows can move by more than that CI: a row
that clears a goal in one training may not in the next. The evaluation draws its episodes from the evaluating
command's seed (`--config.seed`, 0 unless given), not the training's, so runs trained with different seeds and
evaluated by one command line share their episodes; this module checks that their evaluation configs agree
and prints, per setting and row, every run's accuracy, the mean over runs with its 95% CI (Student t over
runs) and the range. It also shows which rows meta-val chose in each run (`features_l2.best`, the best
regression; `best_learned`, the best without hand-made features; the style scorer) and their meta-test
accuracy, so that a reader sees what choosing on meta-val gives over retrainings, not only in one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

from metamusic.errors import MetamusicError
from metamusic.eval.paired import t_interval

# evaluation config fields that may differ between runs without changing the episodes
_NOT_EPISODES = ("dropped", "left_out")


def load(run: str) -> dict:
    """eval.json of a workdir (or the file itself)."""
    path = run if run.endswith(".json") else os.path.join(run, "eval.json")
    if not os.path.exists(path):
        raise MetamusicError(f"no eval.json in {run}: run its evaluation first (--mode=eval)")
    with open(path) as f:
        out = json.load(f)
    if "results" not in out or "config" not in out:
        raise MetamusicError(f"{path} is not a classification evaluation (it has no 'results' and 'config')")
    return out


def check_same_episodes(evals: dict) -> None:
    """Raises MetamusicError naming the first evaluation config field on which two runs differ: their episodes
    would differ, and their rows would not be comparable. A field one eval.json lacks (`seed`, which older
    evaluations did not record) is not compared."""
    names = list(evals)
    ref = {k: v for k, v in evals[names[0]]["config"].items() if k not in _NOT_EPISODES}
    for name in names[1:]:
        cfg = {k: v for k, v in evals[name]["config"].items() if k not in _NOT_EPISODES}
        for field in sorted(set(ref) & set(cfg)):
            if ref[field] != cfg[field]:
                raise MetamusicError(f"{names[0]} and {name} were evaluated on different episodes: their evaluation "
                                     f"config differs in {field!r} ({ref[field]!r} against {cfg[field]!r}); "
                                     "evaluate every run with one command line (the same --config.seed)")


def _stats(values) -> dict:
    a = np.asarray(values, np.float64)
    mean, half = t_interval(a)
    return {"accuracy": [float(x) for x in a], "mean": mean, "sd": float(a.std(ddof=1)) if a.size >= 2 else math.nan,
            "ci95": half, "min": float(a.min()), "max": float(a.max())}


def _chosen(ev: dict) -> dict:
    """The rows meta-val chose in one evaluation: {"best": row, "best_learned": row, "scorer": row} (where
    recorded)."""
    fl = ev.get("features_l2") or {}
    out = {k: fl[k] for k in ("best", "best_learned") if fl.get(k)}
    if (ev.get("scorer") or {}).get("row"):
        out["scorer"] = ev["scorer"]["row"]
    return out


def spread(evals: dict) -> dict:
    """{"settings": {setting: {row: stats}}, "paired_vs_protonet": {setting: {row: [mean per run]}},
    "chosen": {run: {kind: row}}, "chosen_accuracy": {setting: {kind: stats of the chosen rows' accuracy}}}
    for the rows every run evaluated; `evals` maps a run's name to its eval.json."""
    check_same_episodes(evals)
    runs = list(evals)
    settings = [s for s in evals[runs[0]]["results"] if all(s in evals[r]["results"] for r in runs)]
    out = {"runs": runs, "settings": {}, "paired_vs_protonet": {}, "chosen": {r: _chosen(evals[r]) for r in runs},
           "chosen_accuracy": {}}
    for s in settings:
        rows = [row for row in evals[runs[0]]["results"][s] if all(row in evals[r]["results"][s] for r in runs)]
        out["settings"][s] = {row: _stats([evals[r]["results"][s][row]["accuracy"] for r in runs]) for row in rows}
        paired = {}
        for row in rows:
            per = [((evals[r].get("paired_vs_protonet") or {}).get(s) or {}).get(row) for r in runs]
            if all(p is not None for p in per):
                paired[row] = {"mean": [float(p["mean"]) for p in per], "ci95": [float(p["ci95"]) for p in per]}
        out["paired_vs_protonet"][s] = paired
        kinds = set.intersection(*(set(out["chosen"][r]) for r in runs))
        out["chosen_accuracy"][s] = {}
        for kind in sorted(kinds):
            rows_chosen = [out["chosen"][r][kind] for r in runs]
            if all(row in evals[r]["results"][s] for r, row in zip(runs, rows_chosen)):
                out["chosen_accuracy"][s][kind] = _stats([evals[r]["results"][s][row]["accuracy"]
                                                          for r, row in zip(runs, rows_chosen)])
    return out


def markdown(res: dict) -> str:
    runs = res["runs"]
    lines = [f"Runs: {', '.join(runs)} (the same evaluation episodes). Mean over runs +- 95% CI (Student t over "
             f"{len(runs)} runs); range: the largest minus the smallest run.", ""]
    for s, rows in res["settings"].items():
        lines += [f"**{s}**", "", "| row | " + " | ".join(runs) + " | mean over runs | range |",
                  "| --- |" + " --- |" * (len(runs) + 2)]
        for row, st in sorted(rows.items(), key=lambda kv: -kv[1]["mean"]):
            lines.append(f"| {row} | " + " | ".join(f"{a:.3f}" for a in st["accuracy"])
                         + f" | {st['mean']:.3f} +- {st['ci95']:.3f} | {st['max'] - st['min']:.3f} |")
        chosen = res["chosen_accuracy"].get(s) or {}
        for kind, st in chosen.items():
            picks = ", ".join(res["chosen"][r][kind] for r in runs)
            lines.append(f"| meta-val's `{kind}` ({picks}) | " + " | ".join(f"{a:.3f}" for a in st["accuracy"])
                         + f" | {st['mean']:.3f} +- {st['ci95']:.3f} | {st['max'] - st['min']:.3f} |")
        paired = res["paired_vs_protonet"].get(s) or {}
        if paired:
            lines += ["", f"Paired difference to the prototypical net, per run ({s}; mean +- 95% CI over episodes):",
                      "", "| row | " + " | ".join(runs) + " |", "| --- |" + " --- |" * len(runs)]
            for row, p in paired.items():
                lines.append(f"| {row} | " + " | ".join(f"{m:+.3f} +- {c:.3f}" for m, c in zip(p["mean"], p["ci95"]))
                             + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="workdirs (or eval.json files) of runs evaluated on the same episodes")
    ap.add_argument("--out", default="", help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if len(args.runs) < 2:
        ap.error("give at least two runs")
    try:
        res = spread({r: load(r) for r in args.runs})
    except MetamusicError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown(res))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
