"""What the hand-made features know that a trained classification encoder does not: a linear probe per block.

    python benchmarks/feature_probe.py --workdir=runs/relation [--train-windows=3000] [--test-windows=1500]
        [--l2=1.0] [--seed=0] [--out=F.json]

Issue 34 asks for learned encoders that learn what the hand-made features (`data.features.tune_features`)
know. This measures how much of each feature block (`features.BLOCKS`) every trained encoder of a
classification run already holds: a ridge regression from the encoder's features to the standardised
hand-made features, fitted on random windows of meta-train tunes and scored (R^2 per block, over the block's
columns that vary in both sets) on random windows of meta-test tunes. Each window is what an episode shows
(`data.length` tokens of one tune, its bar positions included). A block with a low R^2 is information the
encoder does not carry linearly: where an encoder change or an auxiliary target could add accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", required=True, help="a trained classification run (run_relation.py)")
    ap.add_argument("--train-windows", type=int, default=3000, help="meta-train windows the probe is fitted on")
    ap.add_argument("--test-windows", type=int, default=1500, help="meta-test windows it is scored on")
    ap.add_argument("--l2", type=float, default=1.0, help="ridge penalty (on standardised encoder features)")
    ap.add_argument("--seed", type=int, default=0, help="which windows")
    ap.add_argument("--out", default="", help="also write the figures as JSON here")
    a = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np

    from metamusic import experiments
    from metamusic.data import features
    from metamusic.data.episodes import _WindowSource
    from metamusic.experiments import base, inputs

    cfg = experiments.run_config(a.workdir, "classify")
    exp = experiments.build(cfg, inputs.load_data(cfg))
    corpus = exp.corpus
    rng = np.random.default_rng(a.seed)

    def windows(split: str, n: int):
        styles = corpus.styles_in(split)
        src = _WindowSource(corpus, styles, cfg.data.length, "all", 0)
        ids = np.flatnonzero(np.isin(corpus.style_of, [corpus.style_index(s) for s in styles]))
        ids = rng.choice(ids, size=min(n, len(ids)), replace=False)
        tok, mask, pos = src.windows(rng, ids[None], 1)
        return tok[0], mask[0], pos[0]

    def hand(w):
        return np.stack([features.tune_features(t, p, corpus.enc.num_classes, corpus.enc.min_note)
                         for t, p in zip(w[0], w[2])])

    train, test = windows("train", a.train_windows), windows("test", a.test_windows)
    f_train, f_test = hand(train), hand(test)
    mu, sd = f_train.mean(0), f_train.std(0)
    varies = (sd > 1e-3) & (f_test.std(0) > 1e-3)  # a column constant in either set has no R^2
    f_train, f_test = (f_train - mu) / np.maximum(sd, 1e-6), (f_test - mu) / np.maximum(sd, 1e-6)
    embed = jax.jit(exp.parts.heads.embed)

    def encoded(params, w, chunk=250):
        return np.concatenate([np.asarray(embed(params, *(jnp.asarray(x[i: i + chunk]) for x in w)))
                               for i in range(0, len(w[0]), chunk)])

    blocks = [b for b, _ in features.BLOCKS]
    record = {"workdir": a.workdir, "windows": [len(train[0]), len(test[0])], "l2": a.l2, "r2": {}}
    print(f"run {a.workdir}: {len(train[0])} meta-train / {len(test[0])} meta-test windows of {cfg.data.length} "
          f"tokens; ridge L2 {a.l2:g}; R^2 per block on meta-test windows")
    print("encoder | dims | " + " | ".join(blocks))
    print("--- | --- | " + " | ".join("---" for _ in blocks))
    for m in exp.algorithms:
        params = base.restore(exp, a.workdir, m)["params"]
        x_train, x_test = encoded(params, train), encoded(params, test)
        xm, xs = x_train.mean(0), np.maximum(x_train.std(0), 1e-6)
        x_train = np.c_[(x_train - xm) / xs, np.ones(len(x_train))]
        x_test = np.c_[(x_test - xm) / xs, np.ones(len(x_test))]
        w = np.linalg.solve(x_train.T @ x_train + a.l2 * np.eye(x_train.shape[1]), x_train.T @ f_train)
        pred = x_test @ w
        r2 = {}
        for b in blocks:
            cols = features.block_columns(b)
            cols = cols[varies[cols]]
            resid = ((pred[:, cols] - f_test[:, cols]) ** 2).sum()
            total = ((f_test[:, cols] - f_test[:, cols].mean(0)) ** 2).sum()
            r2[b] = float(1 - resid / total) if total > 0 else float("nan")
        record["r2"][m] = r2
        print(f"{m} | {x_train.shape[1] - 1} | " + " | ".join(f"{r2[b]:.3f}" for b in blocks))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
