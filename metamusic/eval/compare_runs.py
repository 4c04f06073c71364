"""Paired comparison of one generator across two GAN evaluations (e.g. a meta-GAN against its likelihood-only
ablation, `gan.adv_weight=0`): the runs share the seed, so each K's support and held-out tunes per style are
the same draws, and per-style differences pair them.

    python -m metamusic.eval.compare_runs runs/gan runs/gan_noadv --method="meta-GAN, style-conditioned (amortized)"

Prints, per K: the paired difference (A minus B, mean over styles +- 95% CI) of MGEval overlap and style
fidelity at the tables' temperature, and at matched diversity (each run's method at the sweep temperature
whose distinct-4-gram share, pooled over styles, is nearest the held-out tunes'), and each run's two-sample
test accuracy.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from metamusic.errors import MetamusicError
from metamusic.eval.paired import paired_difference

HELD_OUT = "held-out tunes (target)"


def _load(workdir: str) -> dict:
    path = os.path.join(workdir, "eval.json")
    if not os.path.exists(path):
        raise MetamusicError(f"no eval.json in {workdir}: run its evaluation first (--mode=eval)")
    with open(path) as f:
        res = json.load(f)
    if not res.get("per_style"):
        raise MetamusicError(f"{path} has no per-style figures (evaluated before they were saved): "
                             "run --mode=eval again")
    return res


def _matched_temperature(per_t: dict, target: float) -> str:
    """The sweep temperature whose pooled distinct-4-gram share is nearest `target`."""
    return min(per_t, key=lambda t: abs(float(np.mean(per_t[t]["distinct_4grams"])) - target))


def compare(a_dir: str, b_dir: str, method: str, method_b: str | None = None) -> dict:
    a, b = _load(a_dir), _load(b_dir)
    method_b = method_b or method
    if a["config"]["test_styles"] != b["config"]["test_styles"]:
        raise MetamusicError("the two runs were evaluated on different meta-test styles; nothing to pair")
    out = {}
    for k, per_a in a["per_style"].items():
        per_b = b["per_style"].get(k)
        if per_b is None or method not in per_a or method_b not in per_b:
            continue
        t_table = str(float(a["config"]["temperature"]))
        target = float(np.mean(per_a[HELD_OUT]["distinct_4grams"]))
        ta, tb = _matched_temperature(per_a[method], target), _matched_temperature(per_b[method_b], target)
        row = {"matched_temperatures": (ta, tb)}
        for where, (xa, xb) in {"table": (per_a[method][t_table], per_b[method_b][t_table]),
                                "matched": (per_a[method][ta], per_b[method_b][tb])}.items():
            for key in ("overlap_mean", "fidelity"):
                if key in xa and key in xb and None not in xa[key] + xb[key]:
                    row[f"{key}_{where}"] = paired_difference(xa[key], xb[key])
        for name, res, m in (("a", a, method), ("b", b, method_b)):
            c2 = res.get("two_sample", {}).get(k, {}).get(m)
            if c2:
                row[f"two_sample_{name}"] = c2
        out[k] = row
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="workdir of run A (its eval.json)")
    p.add_argument("b", help="workdir of run B, evaluated with the same seed")
    p.add_argument("--method", required=True, help="row label in A's eval.md")
    p.add_argument("--method-b", default=None, help="row label in B's (default: the same)")
    args = p.parse_args(argv)
    try:
        res = compare(args.a, args.b, args.method, args.method_b)
    except MetamusicError as e:
        raise SystemExit(f"error: {e}")
    if not res:
        raise SystemExit(f"error: no K where both runs have the row {args.method!r}")
    for k, row in res.items():
        ta, tb = row["matched_temperatures"]
        print(f"{k}: {args.method} in {args.a} minus {args.method_b or args.method} in {args.b}, "
              "paired over styles (mean +- 95% CI, * where it excludes zero)")
        for key, what in (("table", "at the tables' temperature"), ("matched", f"at matched 4-grams (T {ta} vs {tb})")):
            cells = [f"{m} {d['mean']:+.4f} +- {d['ci95']:.4f}{' *' if d['excludes_zero'] else ''}"
                     for m, d in ((m, row.get(f"{m}_{key}")) for m in ("overlap_mean", "fidelity")) if d]
            print(f"  {what}: " + "; ".join(cells))
        for name, d in (("A", args.a), ("B", args.b)):
            c2 = row.get(f"two_sample_{name.lower()}")
            if c2:
                print(f"  two-sample accuracy {name}: {c2['accuracy']:.3f} [{c2['ci95'][0]:.3f}, {c2['ci95'][1]:.3f}]")


if __name__ == "__main__":
    main()
