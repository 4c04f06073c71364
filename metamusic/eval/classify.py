"""Few-shot style classification on meta-test styles: accuracy with 95% CIs and a confusion matrix.

For each K in cfg.eval.shots, cfg.eval.episodes N-way K-shot episodes are drawn
from meta-test styles with a fixed seed (support from each style's support pool,
queries from its query pool). Methods: every trained metric learner (relation,
protonet), the non-learned nearest-histogram baseline, and chance (1/N).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from metamusic.data import EpisodeSampler, features
from metamusic.data.episodes import Episodes
from metamusic.eval.chunked import map_chunks
from metamusic.experiments import base


def _ci(per_episode: np.ndarray) -> dict:
    n = len(per_episode)
    return {"accuracy": float(per_episode.mean()),
            "ci95": float(1.96 * per_episode.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0, "episodes": n}


def histogram_predictions(eps: Episodes, ways: int, enc) -> np.ndarray:
    return np.stack([features.nearest_class(eps.support[b], eps.support_labels[b], eps.query[b], ways,
                                            enc.num_classes, enc.min_note) for b in range(len(eps.classes))])


def evaluate(exp: base.Experiment, workdir: str) -> dict:
    cfg, corpus = exp.cfg, exp.corpus
    test = corpus.styles_in("test")
    ways = min(cfg.data.ways, len(test))
    params = {m: base.restore(exp, workdir, m)["params"] for m in exp.algorithms}
    first = exp.algorithms[0]
    out = {"config": {"ways": ways, "shots": list(cfg.eval.shots), "episodes": cfg.eval.episodes,
                      "queries": cfg.data.queries, "length": cfg.data.length, "test_styles": test},
           "results": {}}
    confusion = None
    for shots in cfg.eval.shots:
        sampler = EpisodeSampler(corpus, test, ways=ways, shots=shots, queries=cfg.data.queries,
                                 length=cfg.data.length, pool="support/query")
        eps = sampler.sample(np.random.default_rng([cfg.seed, 2, shots]), cfg.eval.episodes)
        res = {}
        for m, p in params.items():
            predict = exp.parts["predictor"](m, ways)
            pred = map_chunks(lambda part, a: predict(p, base.to_device(part)), eps, cfg.eval.chunk)
            res[m] = _ci((pred == eps.query_labels).mean(1))
            if m == first and shots == max(cfg.eval.shots):
                confusion = _confusion(eps, pred, len(corpus.styles))
        hist = histogram_predictions(eps, ways, corpus.enc)
        res["histogram"] = _ci((hist == eps.query_labels).mean(1))
        res["chance"] = {"accuracy": 1.0 / ways, "ci95": 0.0, "episodes": len(eps.classes)}
        out["results"][f"{ways}-way {shots}-shot"] = res
    with open(os.path.join(workdir, "eval.json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(workdir, "eval.md"), "w") as f:
        f.write(markdown(out))
    if confusion is not None:
        idx = [corpus.styles.index(t) for t in test]
        plot_confusion(confusion[np.ix_(idx, idx)], test, os.path.join(workdir, "confusion.png"),
                       f"{first}, {ways}-way {max(cfg.eval.shots)}-shot")
    return out


def _confusion(eps: Episodes, pred: np.ndarray, n_styles: int) -> np.ndarray:
    m = np.zeros((n_styles, n_styles), np.int64)
    true_style = np.take_along_axis(eps.classes, eps.query_labels, 1)
    pred_style = np.take_along_axis(eps.classes, pred, 1)
    np.add.at(m, (true_style.ravel(), pred_style.ravel()), 1)
    return m


def markdown(out: dict) -> str:
    c = out["config"]
    lines = [f"Meta-test styles: {', '.join(c['test_styles'])}. {c['episodes']} episodes per setting, "
             f"{c['queries']} queries per class, windows of {c['length']} tokens; accuracy +- 95% CI.", "",
             "| method | " + " | ".join(out["results"]) + " |", "| --- |" + " --- |" * len(out["results"])]
    names = list(next(iter(out["results"].values())))
    for n in names:
        cells = [f"{r[n]['accuracy']:.3f} +- {r[n]['ci95']:.3f}" for r in out["results"].values()]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_confusion(m: np.ndarray, names, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(names), 0.8 + 0.55 * len(names)))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{rows[i, j]:.2f}", ha="center", va="center", fontsize=6)
    ax.set_xlabel("predicted style")
    ax.set_ylabel("true style")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
