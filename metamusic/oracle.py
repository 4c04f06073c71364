"""The style oracle: the ceiling every few-shot method is read against.

For each meta-test style, the joint model fine-tuned (Adam) on the style's whole support pool,
stopped early on held-out support-pool tunes (never the query pool), so it is never worse on
held-out tunes than where it started. Evaluation reports every method's share of the
joint -> oracle headroom (`eval.paired.headroom_closed`). Config: baselines.oracle_*.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from metamusic.data.files import tiles


def oracle_data(corpus, style: str, length: int, holdout: float, seed: int):
    """The oracle's data for one style: its support-pool tunes only (never the query pool), split
    into tunes it fits and held-out tunes that stop it early, each cut into all its windows.

    Returns (fit (tokens, mask, pos), held (tokens, mask, pos), fit tune indices, held tune indices).
    """
    k = corpus.style_index(style)
    idx = np.random.default_rng([seed, 779, k]).permutation(np.flatnonzero((corpus.style_of == k) & (corpus.pool == 0)))
    n_held = min(max(1, int(round(holdout * len(idx)))), len(idx) - 1)
    held_t, fit_t = np.sort(idx[:n_held]), np.sort(idx[n_held:])
    cut = lambda ids: tiles([corpus.tune(i) for i in ids], length, corpus.enc.pad,
                            [corpus.tune_positions(i) for i in ids])
    return cut(fit_t), cut(held_t), fit_t, held_t


def fit_oracles(exp, joint_params, split: str = "test", corpus=None):
    """The style oracle of every style in `split` of `corpus` (default the experiment's):
    {style index: params}, {style: fit record}."""
    cfg, b = exp.cfg, exp.cfg.baselines
    corpus = corpus if corpus is not None else exp.corpus
    fit_oracle = oracle_fitter(exp.loss_fn, b.oracle_lr, chunk=cfg.eval.chunk * 8)
    params, info = {}, {}
    for style in corpus.styles_in(split):
        fit, held, fit_t, held_t = oracle_data(corpus, style, cfg.data.length, b.oracle_holdout, cfg.seed)
        k = corpus.style_index(style)
        params[k], info[style] = fit_oracle(joint_params, fit, held, steps=b.oracle_steps,
                                            check_every=b.oracle_check_every, batch=b.oracle_batch,
                                            seed=cfg.seed * 1000 + k)
        info[style].update(fit_tunes=int(len(fit_t)), held_tunes=int(len(held_t)))
    return params, info


def oracle_fitter(loss_fn: Callable, lr: float, chunk: int = 256) -> Callable:
    """fit_oracle(params, fit, held, *, steps, check_every, batch, seed) -> (params, record): Adam on
    random minibatches of the `fit` windows, keeping the params with the lowest NLL on `held`.

    Made once per evaluation, so its two jitted functions compile once for every style.
    fit, held: batches as the loss takes them, tuples of numpy arrays [n, ...] (tokens, mask, ...). The held-out NLL (mean per scored
    event, over all held windows) is checked before training and every `check_every` steps;
    the best check wins, so the oracle is never worse on held-out tunes than where it started.
    The record: {"steps": best step, "held_nll": [per check], "check_every", "fit_windows",
    "held_windows"}.
    """
    import jax
    import jax.numpy as jnp
    import optax

    tx = optax.adam(lr)

    @jax.jit
    def step(p, opt, batch, key):
        grads = jax.grad(lambda q: loss_fn(q, batch, key)[0])(p)
        updates, opt = tx.update(grads, opt, p)
        return optax.apply_updates(p, updates), opt

    @jax.jit
    def nll_sum(p, batch, key):
        loss, aux = loss_fn(p, batch, key)
        return loss * aux["events"], aux["events"]

    def held_nll(p, held):
        tot = ev = 0.0
        for a in range(0, len(held[0]), chunk):
            s, e = nll_sum(p, tuple(jnp.asarray(x[a: a + chunk]) for x in held), jax.random.PRNGKey(0))
            tot, ev = tot + float(s), ev + float(e)
        return tot / max(ev, 1.0)

    def fit_oracle(params, fit, held, *, steps: int, check_every: int, batch: int, seed: int):
        rng = np.random.default_rng(seed)
        key = jax.random.PRNGKey(seed)
        opt = tx.init(params)
        curve = [held_nll(params, held)]
        best, best_step, best_val, p = params, 0, curve[0], params
        for i in range(1, steps + 1):
            pick = rng.integers(0, len(fit[0]), size=batch)
            p, opt = step(p, opt, tuple(jnp.asarray(x[pick]) for x in fit), jax.random.fold_in(key, i))
            if i % check_every == 0 or i == steps:
                curve.append(held_nll(p, held))
                if np.isfinite(curve[-1]) and not curve[-1] >= best_val:
                    best, best_step, best_val = p, i, curve[-1]
        return best, {"steps": best_step, "held_nll": [round(float(x), 4) for x in curve],
                      "check_every": check_every, "fit_windows": int(len(fit[0])), "held_windows": int(len(held[0]))}

    return fit_oracle
