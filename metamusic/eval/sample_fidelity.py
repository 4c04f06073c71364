"""Style fidelity of generated melodies, for run_maml.py --mode=eval (needs a trained style scorer).

For each meta-test style: a method adapts on K support tunes, samples melodies,
and the relation-network scorer (`style_fidelity.StyleScorer`) decides whether
each sample belongs to that style or to one of the other meta-test styles (each
given by K tunes of its own). Held-out real tunes of the style are scored the same
way, as the ceiling.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from metamusic.data import TaskSampler
from metamusic.eval.style_fidelity import StyleScorer, style_fidelity
from metamusic.generate import sample


def evaluate(cfg, s, methods: dict, scorer_workdir: str) -> dict:
    """methods: name -> adapt(support (tokens, mask), key) -> params. Returns name -> fidelity summary."""
    scorer = StyleScorer(scorer_workdir, s.corpus)
    f = cfg.eval.fidelity
    test = s.corpus.styles_in("test")
    L, K = cfg.data.length, f.shots
    enc = s.corpus.enc
    rng = np.random.default_rng([cfg.seed, 5])
    draws = {}
    for st in test:
        t = TaskSampler(s.corpus, [st], shots=K, queries=f.samples, length=L, pool="support/query").sample(rng, 1)
        draws[st] = ((t.support[0], t.support_mask[0]), (t.query[0], t.query_mask[0]))
    per = {name: [] for name in list(methods) + ["real tunes"]}
    prime = np.array([enc.bos], np.int32)
    for i, st in enumerate(test):
        target = draws[st][0]
        others = [draws[o][0] for o in test if o != st][: f.distractors]
        per["real tunes"].append(style_fidelity(scorer, draws[st][1], target, others))
        for name, adapt in methods.items():
            key = jax.random.PRNGKey(cfg.seed + i)
            params = adapt((jnp.asarray(target[0]), jnp.asarray(target[1])), key)
            gen = sample(s.model, params, prime, num=f.samples, length=L, temperature=f.temperature,
                         key=jax.random.fold_in(key, 1), enc=enc)
            mask = (gen != enc.pad).astype(np.float32)
            per[name].append(style_fidelity(scorer, (gen, mask), target, others))
    ways = 1 + min(f.distractors, len(test) - 1)
    n = len(test) * f.samples  # scored samples per method (binomial CI over them)
    return {name: {"fidelity": float(np.mean(v)), "ci95": float(1.96 * np.sqrt(np.mean(v) * (1 - np.mean(v)) / n)),
                   "samples": n, "per_style": dict(zip(test, map(float, v))), "chance": 1.0 / ways}
            for name, v in per.items()}
