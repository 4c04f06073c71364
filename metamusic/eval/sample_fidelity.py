"""Style fidelity of generated melodies, for run_maml.py --mode=eval (needs a trained style scorer).

For each meta-test style and each of `eval.fidelity_draws` draws: a method adapts on K whole support
tunes (eval.tune_windows windows each, as the evaluation's episodes), samples melodies, and the style
scorer (`style_fidelity.StyleScorer`) decides whether each sample belongs to that style or to one of
the other meta-test styles (each given by K tunes of its own). The openings of held-out real tunes of
the style are scored the same way, as the ceiling. Every method is scored on the same draws, so two
methods are compared by their paired per-draw differences, and each by its share of the real tunes'
fidelity (bootstrap over draws).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from metamusic import devices, progress
from metamusic.data.episodes import servable
from metamusic.eval.draws import openings, style_draws
from metamusic.eval.paired import paired_difference
from metamusic.eval.style_fidelity import StyleScorer, style_fidelity

REAL = "real tunes"


def evaluate(exp, methods: dict, scorer_workdir: str, corpus=None, left_out: dict | None = None) -> dict:
    """methods: name -> adapt(support (tokens, mask, bar positions), key) -> params. Returns name -> fidelity summary
    on the meta-test styles of `corpus` (default the experiment's) that hold eval.fidelity_shots support-pool
    and eval.samples query-pool tunes; the others are put in `left_out` ({style: what it holds}) and, with
    fewer than two styles left, nothing is scored ({}), as a K no style can serve is in the episodes."""
    cfg, corpus = exp.cfg, corpus if corpus is not None else exp.corpus
    e = cfg.eval
    L, K, W, D = cfg.data.length, e.fidelity_shots, e.get("tune_windows", 1), e.get("fidelity_draws", 1)
    test, left = servable(corpus, corpus.styles_in("test"), K, e.samples)
    if left_out is not None:
        left_out.update(left)
    if len(test) < 2:
        return {}
    scorer = StyleScorer(scorer_workdir, corpus.enc)
    enc = corpus.enc
    rng = np.random.default_rng([cfg.seed, 5])
    draws = [style_draws(corpus, test, K, e.samples, L, rng, tune_windows=W) for _ in range(D)]
    others = lambda d, st: [draws[d][o][0] for o in test if o != st][: e.distractors]

    def key_of(i, d):
        key = jax.random.PRNGKey(cfg.seed + i)
        return key if d == 0 else jax.random.fold_in(key, 7000 + d)

    # scored as the samples are, without bar positions (generated melodies carry none)
    per = {REAL: np.array([[style_fidelity(scorer, openings(draws[d][st][1], W)[:2], draws[d][st][0], others(d, st))
                            for d in range(D)] for st in test])}

    def method_job(adapt):
        """One method's fidelity per (style, draw): one job of `devices.run_jobs`."""
        def job():
            out = np.zeros((len(test), D))
            for d in range(D):
                for i, st in enumerate(test):
                    target, key = draws[d][st][0], key_of(i, d)
                    params = devices.here(adapt(tuple(jnp.asarray(x) for x in target), key))
                    gen = exp.sample(params, target, num=e.samples, length=L, temperature=e.temperature,
                                     key=jax.random.fold_in(key, 1))
                    mask = (gen != enc.pad).astype(np.float32)
                    out[i, d] = style_fidelity(scorer, (gen, mask), target, others(d, st))
                    progress.advance(1)
            return out
        return job

    mesh = devices.mesh_from_config(cfg)
    # each device's first method compiles the sampler and the scorer at every style's shapes: the ETA reads
    # the methods after them
    first = min(1 if mesh is None else mesh.devices.size, len(methods)) * len(test) * D
    with progress.phase("evaluate: style fidelity", len(methods) * len(test) * D, bool(cfg.progress), warmup=first):
        per.update(devices.run_jobs({name: method_job(adapt) for name, adapt in methods.items()}, mesh))
    return summarize(per, test, e.samples, 1.0 / (1 + min(e.distractors, len(test) - 1)))


def summarize(per: dict, styles, samples: int, chance: float, resamples: int = 1000, seed: int = 0) -> dict:
    """per: name -> fidelity per (style, draw) [S, D] (the same draws for every name; REAL among them).

    Each name: its mean fidelity with a 95% CI over the S*D draws (t interval; samples within a draw
    share their support, so the draw is the unit, not the sample), its per-style means, the paired
    difference to the real tunes, and its share of the real tunes' fidelity with a bootstrap CI over draws.
    """
    real = per[REAL].ravel()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, real.size, size=(resamples, real.size))
    out = {}
    for name, v in per.items():
        x = v.ravel()
        half = paired_difference(x, np.zeros_like(x))["ci95"] if x.size > 1 else float("nan")
        r = {"fidelity": float(x.mean()), "ci95": float(half), "samples": int(x.size * samples),
             "draws": int(x.size), "per_style": dict(zip(styles, map(float, v.mean(1)))), "chance": chance}
        if name != REAL:
            r["paired_vs_real"] = paired_difference(x, real)
            ok = real[idx].mean(1) > 0
            shares = x[idx].mean(1)[ok] / real[idx].mean(1)[ok]
            r["share_of_real"] = {"share": float(x.mean() / real.mean()) if real.mean() > 0 else None,
                                  "ci95": [float(np.percentile(shares, 2.5)), float(np.percentile(shares, 97.5))]
                                  if shares.size else [None, None]}
        out[name] = r
    return out
