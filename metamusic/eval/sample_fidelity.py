"""Style fidelity of generated melodies, for run_maml.py --mode=eval (needs a trained style scorer).

For each meta-test style: a method adapts on K support tunes, samples melodies,
and the style scorer (`style_fidelity.StyleScorer`) decides whether each sample
belongs to that style or to one of the other meta-test styles (each given by K
tunes of its own). Held-out real tunes of the style are scored the same way, as
the ceiling.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from metamusic.eval.draws import style_draws
from metamusic.eval.style_fidelity import StyleScorer, style_fidelity


def evaluate(exp, methods: dict, scorer_workdir: str, corpus=None) -> dict:
    """methods: name -> adapt(support (tokens, mask, bar positions), key) -> params. Returns name -> fidelity summary
    on the meta-test styles of `corpus` (default the experiment's)."""
    cfg, corpus = exp.cfg, corpus if corpus is not None else exp.corpus
    e = cfg.eval
    scorer = StyleScorer(scorer_workdir, corpus.enc)
    test = corpus.styles_in("test")
    L, K = cfg.data.length, e.fidelity_shots
    enc = corpus.enc
    draws = style_draws(corpus, test, K, e.samples, L, np.random.default_rng([cfg.seed, 5]))
    per = {name: [] for name in list(methods) + ["real tunes"]}
    for i, st in enumerate(test):
        target = draws[st][0]
        others = [draws[o][0] for o in test if o != st][: e.distractors]
        # scored as the samples are, without bar positions (generated melodies carry none)
        per["real tunes"].append(style_fidelity(scorer, draws[st][1][:2], target, others))
        for name, adapt in methods.items():
            key = jax.random.PRNGKey(cfg.seed + i)
            params = adapt(tuple(jnp.asarray(x) for x in target), key)
            gen = exp.sample(params, target, num=e.samples, length=L, temperature=e.temperature,
                                      key=jax.random.fold_in(key, 1))
            mask = (gen != enc.pad).astype(np.float32)
            per[name].append(style_fidelity(scorer, (gen, mask), target, others))
    ways = 1 + min(e.distractors, len(test) - 1)
    n = len(test) * e.samples  # scored samples per method (binomial CI over them)
    return {name: {"fidelity": float(np.mean(v)), "ci95": float(1.96 * np.sqrt(np.mean(v) * (1 - np.mean(v)) / n)),
                   "samples": n, "per_style": dict(zip(test, map(float, v))), "chance": 1.0 / ways}
            for name, v in per.items()}
