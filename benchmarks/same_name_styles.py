"""Are two collections' styles of one name (O'Neill's and Ryan's jigs) one style? Prints the figures docs/data.md quotes.

    python benchmarks/same_name_styles.py [--episodes 600] [--shots 5] [--queries 10]

For every pair of styles that share the name after the collection (oneills/jig, ryans/jig): how many
tunes the near-duplicate check removed from one because of the other (catalog --skipped names each
partner), and how often 2-way K-shot logistic regression on the hand-made tune features (the
classification section's `features+logreg`: meter, pitch-class, interval and rhythm histograms of a
tune's first 256 tokens) tells them apart, against two dance types of one collection for scale.
Episodes are drawn from a seeded generator; +- is a 95% CI over episodes.
"""

from __future__ import annotations

import argparse
import collections

import numpy as np

from metamusic.data import features, load_corpus


def style_features(corpus, style, length=256):
    """[tunes, D] hand-made features of every tune of `style`, each from its first `length` tokens."""
    idx = np.flatnonzero(corpus.style_of == corpus.style_index(style))
    return np.stack([features.tune_features(corpus.tune(i)[1:length + 1], corpus.tune_positions(i)[1:length + 1],
                                            corpus.enc.num_classes, corpus.enc.min_note) for i in idx])


def two_way(fa, fb, shots, queries, episodes, rng, l2=30.0):
    """Mean accuracy and 95% CI of 2-way episodes between two feature sets."""
    xs, ys, xq, yq = [], [], [], []
    for _ in range(episodes):
        s, q = [], []
        for f in (fa, fb):
            i = rng.choice(len(f), shots + queries, replace=False)
            s.append(f[i[:shots]])
            q.append(f[i[shots:]])
        xs.append(np.concatenate(s))
        xq.append(np.concatenate(q))
        ys.append(np.repeat([0, 1], shots))
        yq.append(np.repeat([0, 1], queries))
    pred = features.logreg_predict(np.array(xs), np.array(ys), np.array(xq), 2, l2=l2)
    acc = (pred == np.array(yq)).mean(1)
    return float(acc.mean()), float(1.96 * acc.std() / np.sqrt(episodes))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=600)
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--queries", type=int, default=10)
    args = p.parse_args(argv)
    c = load_corpus(progress=False)
    by_name = collections.defaultdict(list)
    for s in c.styles:
        by_name[s.split("/", 1)[1]].append(s)
    groups = {n: ss for n, ss in by_name.items() if len(ss) > 1}
    removed = collections.Counter((r["style"], r["partner_style"]) for r in c.removed)
    sizes = collections.Counter(c.styles[k] for k in c.style_of)
    rng = np.random.default_rng(0)
    print(f"{'styles':36} {'splits':12} {'tunes':>9} {'near-copies removed':>20}  2-way {args.shots}-shot accuracy")
    pairs = [tuple(ss[:2]) for ss in groups.values()]
    pairs += [("oneills/jig", "oneills/reel"), ("ryans/jig", "ryans/reel")]
    for a, b in pairs:
        if a not in c.styles or b not in c.styles:
            continue
        gone = removed[(a, b)] + removed[(b, a)]
        m, ci = two_way(style_features(c, a), style_features(c, b), args.shots, args.queries, args.episodes, rng)
        print(f"{a + ' vs ' + b:36} {c.split_of[a] + '/' + c.split_of[b]:12} {sizes[a]:4d}/{sizes[b]:<4d} "
              f"{gone:20d}  {m:.3f} +- {ci:.3f}")


if __name__ == "__main__":
    main()
