"""One classification row of two runs on the same evaluation episodes: the paired difference across runs.

    python benchmarks/paired_runs.py RUN_A RUN_B [--rows=protonet,r2d2] [--shots=5] [--out=paired.json]
    python benchmarks/paired_runs.py RUN_A RUN_B --root=DIR --ways=4   # on a folder's styles, as eval.root
    python benchmarks/paired_runs.py RUN RUN --length-b=1024            # one run, its tunes read longer (eval.length)
    python benchmarks/paired_runs.py RUN_SEED0 RUN_SEED1 --seed=0       # two training seeds, on seed 0's episodes

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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    ap.add_argument("--rows", default="", help="comma-separated rows (default: the heads both runs trained)")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--root", default="", help="evaluate on this folder's styles (as --config.eval.root)")
    ap.add_argument("--ways", type=int, default=0, help="N of the episodes (default: the runs' data.ways)")
    ap.add_argument("--min-tunes", type=int, default=0, help="eval.min_tunes with --root (default: the runs')")
    ap.add_argument("--length-a", type=int, default=0, help="tokens per tune of run A's episodes (eval.length; "
                    "default: the run's)")
    ap.add_argument("--length-b", type=int, default=0, help="the same for run B")
    ap.add_argument("--seed", type=int, default=None,
                    help="draw both runs' episodes with this seed (default: each run's config seed; runs trained "
                         "with different --config.seed compare on one seed's episodes, as --mode=eval draws them)")
    ap.add_argument("--out", default="", help="also write the figures as JSON here")
    args = ap.parse_args(argv)

    import numpy as np

    from metamusic import experiments
    from metamusic.data.episodes import EpisodeSampler, styles_per_k
    from metamusic.eval.classify import episode_windows, learned_features
    from metamusic.eval.paired import paired_difference
    from metamusic.experiments import base, inputs
    from metamusic.experiments import classify as classify_exp
    from metamusic.meta import episodic

    runs = {}
    for wd, length in ((args.run_a, args.length_a), (args.run_b, args.length_b)):
        cfg = experiments.run_config(wd, "classify")
        if args.seed is not None:
            cfg.seed = args.seed
        if length:
            cfg.eval.length = length
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
                                 length=classify_exp.eval_length(cfg), pool="support/query")
        eps = sampler.sample(np.random.default_rng([cfg.seed, 2, args.shots]), cfg.eval.episodes)
        runs[(wd, length)] = (cfg, exp, eps, ways)
    (_, _, ea, _), (_, _, eb, _) = runs[(args.run_a, args.length_a)], runs[(args.run_b, args.length_b)]
    if not same_tunes(ea, eb):
        sys.exit("the two runs draw different evaluation episodes (their data config or seed differ): "
                 "a paired difference needs the same episodes")
    exp_a, exp_b = runs[(args.run_a, args.length_a)][1], runs[(args.run_b, args.length_b)][1]
    names = lambda exp: set(exp.algorithms) | {r for m in exp.algorithms for r in episodic.EXTRA_SCORES.get(m, {})}
    both = names(exp_a) & names(exp_b)
    rows = [r for r in args.rows.split(",") if r] or sorted(set(exp_a.algorithms) & set(exp_b.algorithms))
    for r in rows:
        if r not in both:
            sys.exit(f"--rows: {r!r} is not a row of both runs; they share {sorted(both)}")
    out = {"run_a": args.run_a, "run_b": args.run_b, "shots": args.shots, "episodes": len(ea.classes),
           "length_a": ea.support.shape[-1], "length_b": eb.support.shape[-1], "rows": {}}
    print(f"| row | A: {args.run_a} | B: {args.run_b} | B - A (95% CI, {len(ea.classes)} paired episodes) |")
    print("| --- | --- | --- | --- |")
    restored, encoded = {}, {}  # per (run, method): its params and its encoder's features, shared by its rows
    for r in rows:
        per = {}
        for (wd, length), (cfg, exp, eps, ways) in runs.items():
            method = next(m for m in exp.algorithms if r == m or r in episodic.EXTRA_SCORES.get(m, {}))
            at = (wd, length, method)
            if at not in restored:
                restored[at] = base.restore(exp, wd, method)["params"]
            params = restored[at]
            if r in episodic.COSTLY:  # the row needs the encoder itself (fine-tuning): from the episodes' tokens
                pred = classify_exp.predicted(exp.parts.predictor(r, ways), params, eps, cfg.eval.chunk)
            else:  # as --mode=eval predicts it: each distinct window encoded once, the row read from the features
                if at not in encoded:
                    encoded[at] = learned_features(exp, params, eps, cfg.eval.chunk, episode_windows(eps))
                fs, fq = encoded[at]
                pred = classify_exp.predicted(exp.parts.feature_predictor(r, ways), params,
                                              eps._replace(support=fs, query=fq), cfg.eval.chunk)
            per[(wd, length)] = (pred == eps.query_labels).mean(1)
        a, b = per[(args.run_a, args.length_a)], per[(args.run_b, args.length_b)]
        d = paired_difference(b, a)
        out["rows"][r] = {"a": float(a.mean()), "b": float(b.mean()), "b_minus_a": d}
        print(f"| {r} | {a.mean():.3f} | {b.mean():.3f} | "
              f"{d['mean']:+.3f} +- {d['ci95']:.3f} |", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    return 0


def same_tunes(ea, eb) -> bool:
    """Whether two draws of episodes hold the same tunes. With the same tokens per tune every array must be
    equal; with different lengths, the classes and labels, and every window that holds its tune whole in both
    (shorter than either length: read from its first token in both)."""
    import numpy as np

    if ea.support.shape == eb.support.shape:
        return all(np.array_equal(x, y) for x, y in zip(ea, eb))
    if not all(np.array_equal(getattr(ea, f), getattr(eb, f)) for f in ("classes", "support_labels", "query_labels")):
        return False
    T = min(ea.support.shape[-1], eb.support.shape[-1])
    for part in ("support", "query"):
        ma, mb = getattr(ea, part + "_mask"), getattr(eb, part + "_mask")
        whole = (ma.sum(-1) < T) & (mb.sum(-1) < T)
        if not np.array_equal(getattr(ea, part)[whole][:, :T], getattr(eb, part)[whole][:, :T]):
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
