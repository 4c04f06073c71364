"""Few-shot style classification on meta-test styles: accuracy with 95% CIs, paired differences, confusion.

For each K in cfg.eval.shots, cfg.eval.episodes N-way K-shot episodes are drawn
from meta-test styles with a fixed seed (support from each style's support pool,
queries from its query pool), examples being whole tunes up to eval.length tokens (0: data.length).
Rows: every trained method's own head, the extra ways to use a trained encoder
(`meta.episodic.EXTRA_SCORES`, e.g. pretrain+cosine), two non-learned baselines (the
nearest pitch-class + interval histogram, and logistic regression on meter, pitch-class,
interval and rhythm histograms, alone, beside each trained encoder's features, and beside all
of them: `feature_sets`), a logistic regression on each encoder's features alone (`<method>+logreg`),
and chance (1/N). Each learned row also gets its paired difference to the prototypical net on the
same episodes, and each head its paired difference to its own encoder's other rows.

The style scorer (`eval.style_fidelity`) is the row with the best meta-val accuracy,
chosen here on fixed meta-val episodes (never meta-test) and written to scorer.json.
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from metamusic import progress
from metamusic.data import EpisodeSampler, dropped_summary, features
from metamusic.data.episodes import Episodes
from metamusic.eval.paired import paired_difference
from metamusic.experiments import base
from metamusic.experiments import classify as classify_exp
from metamusic.data.episodes import styles_per_k
from metamusic.errors import MetamusicError
from metamusic.meta import episodic

SCORER_FILE = "scorer.json"


def _ci(per_episode: np.ndarray) -> dict:
    n = len(per_episode)
    return {"accuracy": float(per_episode.mean()),
            "ci95": float(1.96 * per_episode.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0, "episodes": n}


def histogram_predictions(eps: Episodes, ways: int, enc) -> np.ndarray:
    return np.stack([features.nearest_class(eps.support[b], eps.support_labels[b], eps.query[b], ways,
                                            enc.num_classes, enc.min_note) for b in range(len(eps.classes))])


def hand_features(eps: Episodes, enc, distinct=None):
    """(support [B, N*K, D], query [B, N*Q, D]) hand-made features (features.tune_features), each distinct
    window's computed once (`distinct_windows`; as `learned_features`, the episodes hold the same tunes again
    and again). distinct: as in `learned_features`."""
    B, n = eps.support.shape[:2]
    tok, mask, pos = all_windows(eps)
    first, inverse = distinct if distinct is not None else distinct_windows(tok, mask, pos)
    every = features.window_features(tok[first], pos[first], enc.num_classes, enc.min_note)[inverse]
    return every[: B * n].reshape(B, n, -1), every[B * n:].reshape(B, eps.query.shape[1], -1)


def learned_features(exp, params, eps: Episodes, chunk: int, distinct=None):
    """(support, query) encoder features of every episode, [B, N*K, C] and [B, N*Q, C].

    Each distinct window is encoded once (`distinct_windows`): the episodes of one evaluation draw the same few
    thousand tunes again and again, and a tune that fits its window is the same window in every episode. The
    windows are encoded in groups by real length, each cut to its group's width (`window_widths`), so a short
    tune does not pay for a long one's padding: the encoders mask padding before every layer and pool over real
    steps only, so the cut changes no feature beyond float summation order. Each call holds about as many
    tokens as `chunk` episodes do. The tokens encoded (each distinct window at its width) are reported to the
    open progress phase (`encoder_units`). distinct: the episodes' `episode_windows` when the caller has them
    (one evaluation encodes the same episodes with every method)."""
    import jax
    import jax.numpy as jnp

    embed = jax.jit(exp.parts.heads.embed)
    B, n, T = eps.support.shape
    m = eps.query.shape[1]
    tok, mask, pos = all_windows(eps)
    first, inverse = distinct if distinct is not None else distinct_windows(tok, mask, pos)
    widths = window_widths(mask[first].sum(-1), T)
    budget = chunk * (n + m) * T  # tokens per call
    feats = None
    for w in np.unique(widths):
        group = np.flatnonzero(widths == w)
        rows = max(1, min(budget // int(w), len(group)))
        for a in range(0, len(group), rows):
            part = group[a: a + rows]
            idx = first[np.pad(part, (0, rows - len(part)), mode="edge")]  # one shape per group: one compile
            out = np.asarray(embed(params, *(jnp.asarray(x[idx, :w]) for x in (tok, mask, pos))))
            if feats is None:
                feats = np.zeros((len(first), out.shape[-1]), out.dtype)
            feats[part] = out[: len(part)]
            progress.advance(len(part) * int(w))
    every = feats[inverse]
    return every[: B * n].reshape(B, n, -1), every[B * n:].reshape(B, m, -1)


def all_windows(eps: Episodes):
    """(tokens, mask, positions), each [B*N*K + B*N*Q, T]: every support window of every episode, then every
    query window."""
    T = eps.support.shape[-1]
    return tuple(np.concatenate([a.reshape(-1, T), b.reshape(-1, T)]) for a, b in
                 ((eps.support, eps.query), (eps.support_mask, eps.query_mask), (eps.support_pos, eps.query_pos)))


def distinct_windows(tok, mask, pos) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse) over windows [M, T]: the index of one of each distinct window (tokens, mask and bar
    positions alike) and, for every window, which of those it is (window i is window first[inverse[i]])."""
    rows = np.ascontiguousarray(np.concatenate([tok, pos, mask], -1).astype(np.int16))  # tokens, positions < 2**15
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def window_widths(lengths: np.ndarray, T: int, shortest: int = 32) -> np.ndarray:
    """The width each window is encoded at: its real length rounded up to a power of two (at least
    `shortest`), at most T. Few widths, so few compiled shapes."""
    up = 2 ** np.ceil(np.log2(np.maximum(lengths, shortest))).astype(np.int64)
    return np.minimum(up, T)


def episode_windows(eps: Episodes) -> tuple[np.ndarray, np.ndarray]:
    """`distinct_windows` of every window of the episodes (`all_windows`)."""
    return distinct_windows(*all_windows(eps))


def encoder_units(eps: Episodes, distinct=None) -> int:
    """The progress units of encoding episodes with one encoder: the tokens `learned_features` encodes, each
    distinct window at its width. Its time goes there, so the bar's rate holds across short and long windows
    (counting every window of every episode made the first, short-window groups look fast). distinct: as in
    `learned_features`."""
    first, _ = distinct if distinct is not None else episode_windows(eps)
    mask = all_windows(eps)[1]
    return int(window_widths(mask[first].sum(-1), eps.support.shape[-1]).sum())


def rows(exp, costly: bool | None = None) -> list[str]:
    """Every learned row: each method, then its extra ways of scoring (episodic.EXTRA_SCORES); the
    costly ones (a fine-tuning loop per episode) only when eval.finetune_episodes > 0."""
    if costly is None:
        costly = exp.cfg.eval.get("finetune_episodes", 0) > 0
    out = []
    for m in exp.algorithms:
        out += [m] + [r for r in episodic.EXTRA_SCORES.get(m, {}) if costly or r not in episodic.COSTLY]
    return out


def method_of(exp, row: str) -> str:
    """The trained method whose params a row uses."""
    for m in exp.algorithms:
        if row == m or row in episodic.EXTRA_SCORES.get(m, {}):
            return m
    raise KeyError(row)


def choose_scorer(exp, params: dict) -> dict:
    """The learned row with the best accuracy on fixed meta-val episodes (K = data.shots)."""
    cfg = exp.cfg
    eps, ways = classify_exp.val_episodes(exp.cfg, exp.corpus, 778, classify_exp.eval_length(exp.cfg))
    acc, on_feats = {}, {}
    candidates = rows(exp, costly=False)  # the scorer scores every sample: no per-episode fine-tuning
    encoded = {method_of(exp, r) for r in candidates}
    dw = episode_windows(eps)
    with progress.phase("evaluate: style scorer on meta-val, encoders", len(encoded) * encoder_units(eps, dw),
                        bool(cfg.progress)):
        for r in candidates:
            m = method_of(exp, r)
            if m not in on_feats:  # each method's encoder runs once; its rows read the features, as in `evaluate`
                fs, fq = learned_features(exp, params[m], eps, cfg.eval.chunk, dw)
                on_feats[m] = eps._replace(support=fs, query=fq)
            pred = classify_exp.predicted(exp.parts.feature_predictor(r, ways), params[m], on_feats[m], cfg.eval.chunk)
            acc[r] = float((pred == eps.query_labels).mean())
    best = max(acc, key=acc.get)
    return {"row": best, "method": method_of(exp, best), "val_accuracy": acc, "val_ways": ways,
            "val_shots": cfg.data.shots, "val_episodes": cfg.eval.val_tasks}


# the L2 penalties meta-val chooses among (`tune_feature_l2`): the regression gets to (or, at the lowest, near) its
# minimum at each, and meta-val's best on the bundled corpus lay inside the grid (docs/results_classification.md)
FEATURE_L2 = (10.0, 30.0, 100.0, 300.0, 1000.0)


def feature_sets(learned: dict, hand) -> dict:
    """The feature regressions' inputs, by row name: "features+logreg" (the hand-made features alone),
    "<method>+features" (one trained encoder's features beside them), "<method>+logreg" (one encoder's
    features alone: the linear probe of RFS, Tian et al. 2020, on every trained encoder, not only the
    pretrained one; a head's own rule, such as R2D2's ridge with its learned regulariser, need not be the
    best way to read the features it learned) and, with two or more encoders,
    "all+features" (every encoder's features and the hand-made ones in one regression: the encoders
    were trained with different heads, so their features may err on different tunes) and "all+logreg"
    (every encoder's features without the hand-made ones in one regression).

    learned: {method: (support [B, n, C], query [B, m, C])}; hand: (support, query) hand-made features.
    Each value is (support [B, n, D], query [B, m, D])."""
    hs, hq = hand
    out = {"features+logreg": (hs, hq)}
    for m, (ls, lq) in learned.items():
        out[f"{m}+features"] = (np.concatenate([ls, hs], -1), np.concatenate([lq, hq], -1))
    for m, (ls, lq) in learned.items():
        out[f"{m}+logreg"] = (ls, lq)
    if len(learned) > 1:
        out["all+logreg"] = (np.concatenate([ls for ls, _ in learned.values()], -1),
                             np.concatenate([lq for _, lq in learned.values()], -1))
        out["all+features"] = (np.concatenate([ls for ls, _ in learned.values()] + [hs], -1),
                               np.concatenate([lq for _, lq in learned.values()] + [hq], -1))
    return out


def regression_probabilities(exp, params: dict, row: str, l2: float, eps: Episodes, ways: int) -> np.ndarray:
    """Class probabilities [B, N*Q, N] of the feature regression `row` (a `feature_sets` name) fitted on
    each episode's support set; params: every method's trained params (the encoders the row reads)."""
    methods = [m for m in exp.algorithms if row.startswith("all+") or row in (f"{m}+features", f"{m}+logreg")]
    learned = {m: learned_features(exp, params[m], eps, exp.cfg.eval.chunk) for m in methods}
    xs, xq = feature_sets(learned, hand_features(eps, exp.enc))[row]
    z = features.logreg_logits(np.asarray(xs, np.float64), eps.support_labels, np.asarray(xq, np.float64), ways, l2=l2)
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def hand_made(row: str) -> bool:
    """Whether a `feature_sets` row reads the hand-made features."""
    return row == "features+logreg" or row.endswith("+features")


def tune_feature_l2(exp, params: dict | None = None) -> dict:
    """The L2 penalty of each feature regression (feature_sets: keyed by row name), chosen on
    eval.tune_episodes fixed meta-val episodes among FEATURE_L2, with each method's trained `params` for its encoder.
    eval.features_l2 > 0 fixes them all instead. "best" names the regression row with the best
    meta-val accuracy: the one to quote as "the best method" without looking at meta-test;
    "best_learned" the best of the rows that read no hand-made features (absent without encoders)."""
    params = params or {}
    fixed = exp.cfg.eval.get("features_l2", 0.0)
    eps, ways = classify_exp.val_episodes(exp.cfg, exp.corpus, 779, classify_exp.eval_length(exp.cfg),
                                          exp.cfg.eval.get("tune_episodes", 0))
    show = bool(exp.cfg.progress)
    dw = episode_windows(eps)
    with progress.phase("evaluate: regression L2s on meta-val, encoders", len(params) * encoder_units(eps, dw), show):
        learned = {m: learned_features(exp, p, eps, exp.cfg.eval.chunk, dw) for m, p in params.items()}
    sets = feature_sets(learned, hand_features(eps, exp.corpus.enc, dw))
    out = {"l2": {}, "val_accuracy": {}, "objective": features.LOGREG_OBJECTIVE, "episodes": len(eps.classes)}
    grid = (float(fixed),) if fixed else FEATURE_L2
    # each fit weighted by its features' width, as the evaluation's feature-row bars are
    width = sum(xs.shape[-1] for xs, _ in sets.values())
    with progress.phase("evaluate: regression L2s on meta-val, feature rows", len(grid) * width, show) as bar:
        for k, (xs, xq) in sets.items():
            acc = {}
            for l2 in grid:
                pred = features.logreg_predict(xs, eps.support_labels, xq, ways, l2=l2)
                acc[l2] = float((pred == eps.query_labels).mean())
                bar.advance(xs.shape[-1])
            out["l2"][k] = max(acc, key=acc.get)
            out["val_accuracy"][k] = {str(l2): v for l2, v in acc.items()}
    at_l2 = lambda k: out["val_accuracy"][k][str(out["l2"][k])]
    out["best"] = max(sets, key=at_l2)
    learned_only = [k for k in sets if not hand_made(k)]
    if learned_only:
        out["best_learned"] = max(learned_only, key=at_l2)
    return out


def predicting_row(tuned: dict, scorer_row: str, scorer_val: float) -> tuple:
    """(row, L2) that predicts a user's tunes (`--mode=classify`) and draws an evaluation's confusion matrix: the
    feature regression meta-val chose (`tuned`: `tune_feature_l2`'s record, an eval.json's "features_l2"), with its
    L2, where its meta-val accuracy beats the style scorer's row; else the scorer's row, with L2 None. Both
    accuracies are on meta-val episodes at data.shots; an L2 chosen for another regression objective (an
    evaluation before features.LOGREG_OBJECTIVE) is not used."""
    best = tuned.get("best")
    val = tuned.get("val_accuracy", {}).get(best, {}).get(str(tuned.get("l2", {}).get(best)))
    if best and val is not None and val > scorer_val and tuned.get("objective") == features.LOGREG_OBJECTIVE:
        return best, tuned["l2"][best]
    return scorer_row, None


def evaluate(exp: base.Experiment, workdir: str, test_corpus=None, name: str = "eval") -> dict:
    """Writes workdir/<name>.{json,md} and confusion<suffix>.png (confusion.png for name "eval",
    confusion_theirs.png for "eval_theirs"), and the scorer's choice to scorer.json.

    test_corpus: a corpus whose every style is meta-test (eval.root), instead of the run's own
    meta-test styles."""
    cfg = exp.cfg
    corpus = test_corpus if test_corpus is not None else exp.corpus
    test = corpus.styles_in("test")
    ways = min(cfg.data.ways, len(test))
    # which styles can serve each K, known before any work: a K with fewer than `ways` such styles is left
    # out and named (no K at all: an error now, before the scorer's choice and the tuning)
    serve, left_out = styles_per_k(corpus, test, cfg.eval.shots, cfg.data.queries, min_styles=ways)
    if not any(serve.values()):
        raise MetamusicError(f"no K of eval.shots={list(cfg.eval.shots)} has {ways} meta-test styles with enough "
                             f"tunes for K shots + data.queries={cfg.data.queries}: {left_out}; "
                             "lower eval.shots or data.queries")
    params = {m: base.restore(exp, workdir, m)["params"] for m in exp.algorithms}
    scorer = choose_scorer(exp, params)
    with open(os.path.join(workdir, SCORER_FILE), "w") as f:
        json.dump(scorer, f, indent=1)
    # seed: the episodes' (meta-val and meta-test draws), the evaluating command's, not the training's
    out = {"config": {"seed": cfg.seed, "ways": ways, "shots": list(cfg.eval.shots), "episodes": cfg.eval.episodes,
                      "queries": cfg.data.queries, "length": classify_exp.eval_length(cfg), "test_styles": test,
                      "bar_position": bool(cfg.data.get("bar_position", False)),
                      "corpus": cfg.eval.get("root", "") if test_corpus is not None else "training corpus's meta-test"},
           "scorer": scorer, "results": {}, "paired_vs_protonet": {}, "head_vs_own_encoder": {}, "seconds": {}}
    if left_out:
        out["config"]["left_out"] = left_out
    if test_corpus is not None and "dropped" in corpus.report:
        out["config"]["dropped"] = corpus.report["dropped"]
    confusion = None
    top_k = max(k for k in cfg.eval.shots if serve[k])  # the confusion matrix: the largest K evaluated
    tuned = tune_feature_l2(exp, params)
    out["features_l2"] = tuned
    shown, _ = predicting_row(tuned, scorer["row"], scorer["val_accuracy"].get(scorer["row"], 0.0))
    out["confusion_row"] = shown  # the row --mode=classify predicts with, drawn at the largest K evaluated
    for shots in cfg.eval.shots:
        if not serve[shots]:
            continue
        sampler = EpisodeSampler(corpus, serve[shots], ways=ways, shots=shots, queries=cfg.data.queries,
                                 length=classify_exp.eval_length(cfg), pool="support/query")
        eps = sampler.sample(np.random.default_rng([cfg.seed, 2, shots]), cfg.eval.episodes)
        res, per, secs = {}, {}, {}
        feats = {}
        label, show = f"evaluate: {ways}-way {shots}-shot", bool(cfg.progress)
        dw = episode_windows(eps)
        with progress.phase(f"{label}, encoders", len(exp.algorithms) * encoder_units(eps, dw), show):
            for m in exp.algorithms:  # each method's encoder runs once over the episodes; its rows read the features
                t0 = time.perf_counter()
                fs, fq = learned_features(exp, params[m], eps, cfg.eval.chunk, dw)
                feats[m] = (fs, fq)
                on_feats = eps._replace(support=fs, query=fq)
                embed_s = time.perf_counter() - t0
                for r in [r for r in rows(exp) if method_of(exp, r) == m]:
                    t0 = time.perf_counter()
                    if r in episodic.COSTLY:  # fine-tuning needs the encoder: the first eval.finetune_episodes episodes
                        sub = type(eps)(*(x[: cfg.eval.finetune_episodes] for x in eps))
                        predict = exp.parts.predictor(r, ways)
                    else:
                        sub = on_feats
                        predict = exp.parts.feature_predictor(r, ways)
                    pred = classify_exp.predicted(predict, params[m], sub, cfg.eval.chunk)
                    per[r] = (pred == sub.query_labels).mean(1)
                    res[r] = _ci(per[r])
                    secs[r] = round(time.perf_counter() - t0 + (embed_s if r == m else 0.0), 2)
                    if r == shown and shots == top_k:
                        confusion = _confusion(sub, pred, len(corpus.styles))
        hand = hand_features(eps, corpus.enc, dw)
        # (row, predict, its weight in the bar: a regression's cost grows with its features' width; the histogram
        # row is counted as wide as the hand-made features)
        baselines = [("histogram", lambda: histogram_predictions(eps, ways, corpus.enc), hand[0].shape[-1])]
        for r, (xs, xq) in feature_sets(feats, hand).items():  # hand-made features, alone and beside each encoder's
            baselines.append((r, lambda xs=xs, xq=xq: features.logreg_predict(
                xs, eps.support_labels, xq, ways, l2=tuned["l2"][r]), xs.shape[-1]))
        with progress.phase(f"{label}, feature rows", sum(w for *_, w in baselines), show) as rows_bar:
            for r, fn, weight in baselines:
                t0 = time.perf_counter()
                pred = fn()
                per[r] = (pred == eps.query_labels).mean(1)
                if r == shown and shots == top_k:
                    confusion = _confusion(eps, pred, len(corpus.styles))
                res[r] = _ci(per[r])
                secs[r] = round(time.perf_counter() - t0, 2)
                rows_bar.advance(weight)
        res["chance"] = {"accuracy": 1.0 / ways, "ci95": 0.0, "episodes": len(eps.classes)}
        key = f"{ways}-way {shots}-shot"
        out["results"][key] = res
        out["seconds"][key] = secs
        ref = episodic.REFERENCE
        if ref in per:
            out[f"paired_vs_{ref}"][key] = {r: paired_difference(per[r], per[ref][: len(per[r])])
                                            for r in per if r != ref}
        # what each head adds over its own encoder's features scored another way (the relation module
        # against a fixed distance on the same features)
        out["head_vs_own_encoder"][key] = {f"{m} - {r}": paired_difference(per[m][: len(per[r])], per[r])
                                           for m in exp.algorithms for r in per
                                           if r != m and (r in episodic.EXTRA_SCORES.get(m, {}) or r == f"{m}+logreg")}
    suffix = "" if name == "eval" else name[len("eval"):] if name.startswith("eval") else "_" + name
    with open(os.path.join(workdir, name + ".json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(workdir, name + ".md"), "w", encoding="utf-8", errors="backslashreplace") as f:
        f.write(markdown(out))
    if confusion is not None:
        idx = [corpus.styles.index(t) for t in test]
        plot_confusion(confusion[np.ix_(idx, idx)], test, os.path.join(workdir, f"confusion{suffix}.png"),
                       f"{shown}, {ways}-way {top_k}-shot")
    return out


def _confusion(eps: Episodes, pred: np.ndarray, n_styles: int) -> np.ndarray:
    m = np.zeros((n_styles, n_styles), np.int64)
    true_style = np.take_along_axis(eps.classes, eps.query_labels, 1)
    pred_style = np.take_along_axis(eps.classes, pred, 1)
    np.add.at(m, (true_style.ravel(), pred_style.ravel()), 1)
    return m


def markdown(out: dict) -> str:
    c = out["config"]
    lines = [f"Meta-test styles ({c['corpus']}): {', '.join(c['test_styles'])}. {c['episodes']} episodes per "
             f"setting, {c['queries']} query tunes per class, whole tunes up to {c['length']} tokens "
             f"(bar position {'on' if c['bar_position'] else 'off'}); accuracy +- 95% CI.", ""]
    if "dropped" in c:
        lines += [f"From {c['corpus']}: {dropped_summary(c['dropped'])}.", ""]
    for k, left in c.get("left_out", {}).items():
        none = f"{c['ways']}-way {k[len('K='):]}-shot" not in out["results"]
        lines += [f"Left out at {k} (too few tunes for K support + {c['queries']} query tunes per class"
                  + (f"; fewer than {c['ways']} styles remain, so this K is not evaluated" if none else "") + "): "
                  + ", ".join(f"{st} ({why})" for st, why in left.items()), ""]
    lines += ["| method | " + " | ".join(out["results"]) + " |", "| --- |" + " --- |" * len(out["results"])]
    names = list(next(iter(out["results"].values())))
    for n in names:
        cells = [f"{r[n]['accuracy']:.3f} +- {r[n]['ci95']:.3f}" +
                 (f" ({r[n]['episodes']} episodes)" if r[n]["episodes"] != c["episodes"] else "")
                 for r in out["results"].values()]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    if out.get("paired_vs_protonet"):
        lines += ["", "Paired difference to the prototypical net on the same episodes (mean +- 95% CI):", "",
                  "| method | " + " | ".join(out["paired_vs_protonet"]) + " |",
                  "| --- |" + " --- |" * len(out["paired_vs_protonet"])]
        for n in next(iter(out["paired_vs_protonet"].values())):
            cells = [f"{d[n]['mean']:+.3f} +- {d[n]['ci95']:.3f}" for d in out["paired_vs_protonet"].values()]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    own = out.get("head_vs_own_encoder", {})
    if any(own.values()):
        lines += ["", "Each head against its own encoder's features scored another way, same episodes "
                      "(head minus row, mean +- 95% CI):", "",
                  "| head - row | " + " | ".join(own) + " |", "| --- |" + " --- |" * len(own)]
        for n in next(iter(own.values())):
            lines.append(f"| {n} | " + " | ".join(f"{d[n]['mean']:+.3f} +- {d[n]['ci95']:.3f}" for d in own.values()) + " |")
    fl = out.get("features_l2", {})
    if fl.get("l2"):
        lines += ["", f"Feature regressions (L2 chosen on {fl.get('episodes', 'the')} meta-val episodes; "
                      "meta-val accuracy at that L2): " +
                  ", ".join(f"{k} {fl['val_accuracy'][k][str(v)]:.3f} (L2 {v:g})" for k, v in fl["l2"].items()) +
                  f"; best on meta-val: **{fl['best']}**" +
                  (f"; best without hand-made features: **{fl['best_learned']}**" if fl.get("best_learned") else "")]
    sc = out.get("scorer")
    if sc:
        lines += ["", f"Style scorer (best meta-val accuracy, {sc['val_ways']}-way {sc['val_shots']}-shot, "
                      f"{sc['val_episodes']} episodes): **{sc['row']}**; " +
                  ", ".join(f"{k} {v:.3f}" for k, v in sc["val_accuracy"].items())]
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
