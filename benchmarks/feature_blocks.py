"""What one block of the hand-made tune features adds: features+logreg with every block against the same
regression without it, on the same episodes. Prints the figures docs/results_classification.md quotes.

    python benchmarks/feature_blocks.py [--drop rhythm] [--root DIR] [--episodes 1500] [--ways 5] [--shots 5]

Groups of styles: the bundled corpus's meta-val styles, its meta-test styles, the dance types of its
meta-train (O'Neill's and Ryan's hornpipes, reels, jigs, airs and strathspeys: styles told apart by rhythm
more than by pitch), and with --root every style of a user folder (ROOT/<style>/, at least --min-tunes
tunes). Each tune's features are read from its first --length tokens, as the classification evaluation
reads whole tunes. The regression is the evaluation's `features.logreg_predict` at one L2 (--l2). Episodes
come from a seeded generator; +- is a 95% CI over episodes of the accuracy and of the paired difference.
"""

from __future__ import annotations

import argparse

import numpy as np

from metamusic.data import features, load_corpus, splits
from same_name_styles import style_features  # benchmarks/ is on the path when a script here runs

DANCE_TYPES = ("oneills/hornpipe", "oneills/reel", "oneills/air", "ryans/hornpipe", "ryans/reel", "ryans/jig",
               "ryans/strathspey")


def episodes(per_style, ways, shots, queries, n, rng):
    """n episodes of `ways` styles drawn from per_style ([tunes, D] arrays): (xs, ys, xq, yq)."""
    xs, xq = [], []
    for _ in range(n):
        s, q = [], []
        for k in rng.choice(len(per_style), ways, replace=False):
            f = per_style[k]
            i = rng.choice(len(f), shots + queries, replace=False)
            s.append(f[i[:shots]])
            q.append(f[i[shots:]])
        xs.append(np.concatenate(s))
        xq.append(np.concatenate(q))
    ys = np.tile(np.repeat(np.arange(ways), shots), (n, 1))
    yq = np.tile(np.repeat(np.arange(ways), queries), (n, 1))
    return np.array(xs), ys, np.array(xq), yq


def accuracy(eps, cols, l2):
    xs, ys, xq, yq = eps
    return (features.logreg_predict(xs[..., cols], ys, xq[..., cols], ys.max() + 1, l2=l2) == yq).mean(1)


def ci(a):
    return 1.96 * a.std(ddof=1) / np.sqrt(len(a))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--drop", default="rhythm", choices=[b for b, _ in features.BLOCKS])
    p.add_argument("--root", default="", help="a user folder of styles to add as a group")
    p.add_argument("--min-tunes", type=int, default=10)
    p.add_argument("--episodes", type=int, default=1500)
    p.add_argument("--ways", type=int, default=5)
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--queries", type=int, default=5)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--l2", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    c = load_corpus(progress=False)
    groups = {"meta-val": (c, [s for s in c.styles if c.split_of[s] == "val"]),
              "meta-test": (c, [s for s in c.styles if c.split_of[s] == "test"]),
              "meta-train dance types": (c, [s for s in DANCE_TYPES if s in c.styles])}
    if args.root:
        u = load_corpus(args.root, progress=False, all_test=True, split=splits.SplitConfig(min_tunes=args.min_tunes))
        groups[args.root] = (u, list(u.styles))
    width = sum(w for _, w in features.BLOCKS)
    keep = np.setdiff1d(np.arange(width), features.block_columns(args.drop))
    print(f"{args.ways}-way {args.shots}-shot features+logreg (l2={args.l2}, {args.episodes} episodes, "
          f"{args.queries} queries a class): every block, without '{args.drop}', paired difference")
    for name, (corpus, styles) in groups.items():
        if len(styles) < args.ways:
            print(f"{name}: {len(styles)} styles, fewer than {args.ways}; skipped")
            continue
        per_style = [style_features(corpus, s, args.length) for s in styles]
        small = [s for s, f in zip(styles, per_style) if len(f) < args.shots + args.queries]
        if small:
            print(f"{name}: styles with fewer than {args.shots + args.queries} tunes skipped: {small}")
            per_style = [f for f in per_style if len(f) >= args.shots + args.queries]
        eps = episodes(per_style, args.ways, args.shots, args.queries, args.episodes, np.random.default_rng(args.seed))
        a, b = accuracy(eps, np.arange(width), args.l2), accuracy(eps, keep, args.l2)
        d = a - b
        print(f"{name} ({len(per_style)} styles): every block {a.mean():.3f} +- {ci(a):.3f}, "
              f"without {b.mean():.3f} +- {ci(b):.3f}, difference {d.mean():+.3f} +- {ci(d):.3f}")


if __name__ == "__main__":
    main()
