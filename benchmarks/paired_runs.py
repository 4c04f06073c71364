"""One classification row of two runs on the same evaluation episodes: the paired difference across runs.

    python benchmarks/paired_runs.py RUN_A RUN_B [--rows=protonet,r2d2] [--shots=5] [--out=paired.json]
    python benchmarks/paired_runs.py RUN_A RUN_B --root=DIR --ways=4   # on a folder's styles, as eval.root

`--mode=eval` pairs the rows of one run; comparing two trainings (a config change, a new loss) needs the
same for rows of different runs. For each row (a trained head or one of its extra rows, such as
relation+euclidean, present in both runs), this restores each run's params, draws the meta-test episodes
its evaluation draws for K shots (the same seed, so the same episodes when both runs have the same data
config: checked, the script stops if the episodes differ; with --root, on that folder's styles as
`--config.eval.root=DIR` evaluates them, tunes seen in training dropped), predicts them with each run's row and prints
each run's accuracy (which is its eval.md figure) and B - A with its 95% CI over the paired episodes.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    ap.add_argument("--rows", default="", help="comma-separated rows (default: the heads both runs trained)")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--root", default="", help="evaluate on this folder's styles (as --config.eval.root)")
    ap.add_argument("--ways", type=int, default=0, help="N of the episodes (default: the runs' data.ways)")
    ap.add_argument("--min-tunes", type=int, default=0, help="eval.min_tunes with --root (default: the runs')")
    ap.add_argument("--out", default="", help="also write the figures as JSON here")
    args = ap.parse_args(argv)

    import numpy as np

    from metamusic import experiments
    from metamusic.data.episodes import EpisodeSampler, styles_per_k
    from metamusic.eval.paired import paired_difference
    from metamusic.experiments import base, inputs
    from metamusic.experiments import classify as classify_exp
    from metamusic.meta import episodic

    runs = {}
    for wd in (args.run_a, args.run_b):
        cfg = experiments.run_config(wd, "classify")
        if args.ways:
            cfg.data.ways = args.ways
        exp = experiments.build(cfg, inputs.load_data(cfg))
        corpus = exp.corpus
        if args.root:
            cfg.eval.root = args.root
            if args.min_tunes:
                cfg.eval.min_tunes = args.min_tunes
            corpus = experiments.load_test_data(cfg, exp.corpus)
        ways = min(cfg.data.ways, len(corpus.styles_in("test")))
        serve, _ = styles_per_k(corpus, corpus.styles_in("test"), (args.shots,), cfg.data.queries, min_styles=ways)
        if not serve[args.shots]:
            sys.exit(f"{wd}: no {ways} meta-test styles have {args.shots} shots + {cfg.data.queries} queries")
        sampler = EpisodeSampler(corpus, serve[args.shots], ways=ways, shots=args.shots, queries=cfg.data.queries,
                                 length=cfg.data.length, pool="support/query")
        eps = sampler.sample(np.random.default_rng([cfg.seed, 2, args.shots]), cfg.eval.episodes)
        runs[wd] = (cfg, exp, eps, ways)
    (_, _, ea, _), (_, _, eb, _) = runs[args.run_a], runs[args.run_b]
    if any(np.asarray(x).shape != np.asarray(y).shape or not np.array_equal(x, y) for x, y in zip(ea, eb)):
        sys.exit("the two runs draw different evaluation episodes (their data config or seed differ): "
                 "a paired difference needs the same episodes")
    names = lambda exp: set(exp.algorithms) | {r for m in exp.algorithms for r in episodic.EXTRA_SCORES.get(m, {})}
    both = names(runs[args.run_a][1]) & names(runs[args.run_b][1])
    rows = [r for r in args.rows.split(",") if r] or sorted(set(runs[args.run_a][1].algorithms)
                                                            & set(runs[args.run_b][1].algorithms))
    for r in rows:
        if r not in both:
            sys.exit(f"--rows: {r!r} is not a row of both runs; they share {sorted(both)}")
    out = {"run_a": args.run_a, "run_b": args.run_b, "shots": args.shots, "episodes": len(ea.classes), "rows": {}}
    print(f"| row | A: {args.run_a} | B: {args.run_b} | B - A (95% CI, {len(ea.classes)} paired episodes) |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        per = {}
        for wd, (cfg, exp, eps, ways) in runs.items():
            method = next(m for m in exp.algorithms if r == m or r in episodic.EXTRA_SCORES.get(m, {}))
            params = base.restore(exp, wd, method)["params"]
            pred = classify_exp.predicted(exp.parts.predictor(r, ways), params, eps, cfg.eval.chunk)
            per[wd] = (pred == eps.query_labels).mean(1)
        d = paired_difference(per[args.run_b], per[args.run_a])
        out["rows"][r] = {"a": float(per[args.run_a].mean()), "b": float(per[args.run_b].mean()), "b_minus_a": d}
        print(f"| {r} | {per[args.run_a].mean():.3f} | {per[args.run_b].mean():.3f} | "
              f"{d['mean']:+.3f} +- {d['ci95']:.3f} |", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
