"""The style oracle: the ceiling every few-shot method is read against.

For each meta-test style, the best whole-support-pool adaptation we can make, chosen on held-out
support-pool tunes (never the query pool). The candidates ("members") are every start in
`baselines.oracle_from` that the run trained (the joint model as it is; a conditioned method,
amortized or CAVIA, adapted on the style's whole fit pool), each fine-tuned with Adam at every lr
of `baselines.oracle_lrs`, checked on the held-out tunes (every `oracle_fine_every` steps early, every
`oracle_check_every` later). The member, lr and step with
the lowest held-out NLL win; the check before any step is a candidate, so the oracle is never
worse on held-out tunes than its best start. One recipe is not enough for a ceiling: a fixed
Adam lr overshoots on small styles close to the joint model and undershoots on large ones, and
a K-shot conditioned method could beat a fine-tuned joint model that ignores conditioning.
Evaluation reports every method's share of the joint -> oracle headroom
(`eval.paired.headroom_closed`) and which member won per style.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from metamusic import devices, progress
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


def oracle_lrs(b) -> tuple:
    """The Adam lrs of the ceiling's fine-tuning: baselines.oracle_lrs, or the single oracle_lr of runs
    made before the lr grid."""
    return tuple(float(x) for x in (b.get("oracle_lrs") or (b.oracle_lr,)))


def padded(batch, multiple: int = 64, most: Optional[int] = None):
    """A batch of windows padded with empty windows (mask 0) to the next power of two of at least
    `multiple` (but not past `most`, where given and the batch is no larger), so a conditioning start
    compiles a few times, not once per style. Empty windows carry no weight in the masked losses and in
    the support encoder's pooling."""
    n = len(batch[0])
    size = max(multiple, 1 << max(0, int(np.ceil(np.log2(max(n, 1))))))
    if most is not None and n <= most:
        size = min(size, most)
    return tuple(np.concatenate([x, np.zeros((size - n,) + x.shape[1:], x.dtype)]) for x in batch)


def fit_oracles(exp, starts: dict, split: str = "test", corpus=None):
    """The style oracle of every style in `split` of `corpus` (default the experiment's).

    starts: {member start name: start(fit windows batch, key) -> params}, e.g. {"joint": lambda *_: params}.
    Returns {style index: params of the winning member}, {style: record}; the record names the winning
    `member` ("<start>@<lr>"), its `steps`, its held-out `held_nll` curve, and every member's best held NLL and
    steps (`members`). Its Adam steps are reported to the open progress phase (`metamusic.progress`), whose
    total is revised as fits stop early. Every (style, start) is one job,
    spread over the devices of `sharding` (`devices.run_jobs`); the winner is chosen as if they ran in turn.
    """
    import jax

    cfg, b = exp.cfg, exp.cfg.baselines
    corpus = corpus if corpus is not None else exp.corpus
    fit_oracle, lrs = oracle_fitter(exp.loss_fn, chunk=cfg.eval.chunk * 8), oracle_lrs(b)
    styles = corpus.styles_in(split)
    data = {style: oracle_data(corpus, style, cfg.data.length, b.oracle_holdout, cfg.seed) for style in styles}

    steps_of = progress.FitSteps(progress.current(), len(styles) * len(starts) * len(lrs), b.oracle_steps)

    def member_fits(style, s, start):
        """Every lr's fit from one start for one style: one job (the start is adapted once for its lrs)."""
        def job():
            fit, held = data[style][:2]
            k = corpus.style_index(style)
            p0 = devices.here(start(padded(fit), jax.random.PRNGKey(cfg.seed * 1000 + k + 7919 * s)))
            out = {lr: fit_oracle(p0, fit, held, steps=b.oracle_steps, check_every=b.oracle_check_every,
                                  batch=b.oracle_batch, seed=cfg.seed * 1000 + k,
                                  patience=b.get("oracle_patience", 0), fine_every=b.get("oracle_fine_every", 0),
                                  fine_until=b.get("oracle_fine_until", 0), on_end=steps_of.finished, lr=lr)
                   for lr in lrs}
            return out
        return job

    jobs = {(style, s): member_fits(style, s, start) for style in styles for s, start in enumerate(starts.values())}
    fits = devices.run_jobs(jobs, devices.mesh_from_config(cfg))
    params, info = {}, {}
    for style in styles:
        fit, held, fit_t, held_t = data[style]
        best, members = None, {}
        for s, start_name in enumerate(starts):
            for lr, (p, rec) in fits[style, s].items():
                name = start_name if len(starts) == 1 and len(lrs) == 1 else f"{start_name}@{lr:g}"
                members[name] = {"steps": rec["steps"], "held_nll": rec["best"]}
                if best is None or rec["best_exact"] < best[2]["best_exact"]:
                    best = (name, p, rec)
        name, params[corpus.style_index(style)], rec = best
        info[style] = {"member": name, **{f: v for f, v in rec.items() if not f.startswith("best")},
                       "held_nll_best": rec["best"],
                       "fit_tunes": int(len(fit_t)), "held_tunes": int(len(held_t))}
        if len(members) > 1:
            info[style]["members"] = members
    return params, info


def oracle_fitter(loss_fn: Callable, lr: Optional[float] = None, chunk: int = 256) -> Callable:
    """fit_oracle(params, fit, held, *, steps, check_every, batch, seed, patience=0, fine_every=0, fine_until=0,
    on_end=None, lr=the factory's lr) -> (params, record):
    Adam at `lr` on random minibatches of the `fit` windows, keeping the params with the lowest NLL on `held`.

    Made once per evaluation, so its two jitted functions compile once for every style and lr: the lr is an
    argument of the compiled step, not a constant in it, and the held-out windows are scored in chunks
    padded with empty windows to a power of two (`padded`), so a style's held-out count is not a new shape.
    fit, held: batches as the loss takes them, tuples of numpy arrays [n, ...] (tokens, mask, ...). The held-out NLL (mean per scored
    event, over all held windows) is checked before training and every `check_every` steps;
    the best check wins, so the oracle is never worse on held-out tunes than where it started. With
    fine_every > 0 the checks come every fine_every steps up to step fine_until, then every check_every:
    small styles close to the start peak within a few dozen steps, large ones improve slowly for hundreds.
    patience > 0 stops after that many checks in a row without a new best (the rest could only lose).
    Each step is reported to the open progress phase; on_end(steps taken) is called when the fit ends.
    The record: {"steps": best step, "best": its held NLL (rounded; "best_exact" unrounded, which members are
    compared on), "held_nll": [per check], "checked": [their
    steps], "check_every",
    "fit_windows", "held_windows"}.
    """
    import jax
    import jax.numpy as jnp
    import optax

    @jax.jit
    def step(p, opt, batch, key, lr):
        grads = jax.grad(lambda q: loss_fn(q, batch, key)[0])(p)
        updates, opt = optax.adam(lr).update(grads, opt, p)
        return optax.apply_updates(p, updates), opt

    @jax.jit
    def nll_sum(p, batch, key):
        loss, aux = loss_fn(p, batch, key)
        return loss * aux["events"], aux["events"]

    def held_nll(p, held):
        tot = ev = 0.0
        for a in range(0, len(held[0]), chunk):
            part = padded(tuple(x[a: a + chunk] for x in held), min(64, chunk), most=chunk)
            s, e = nll_sum(p, tuple(jnp.asarray(x) for x in part), jax.random.PRNGKey(0))
            tot, ev = tot + float(s), ev + float(e)
        return tot / max(ev, 1.0)

    def fit_oracle(params, fit, held, *, steps: int, check_every: int, batch: int, seed: int, patience: int = 0,
                   fine_every: int = 0, fine_until: int = 0, on_end: Optional[Callable[[int], None]] = None,
                   lr: Optional[float] = lr):
        rng = np.random.default_rng(seed)
        key = jax.random.PRNGKey(seed)
        opt = optax.adam(lr).init(params)  # Adam's moments do not depend on the lr
        lr_arg = jnp.float32(lr)
        curve, checked = [held_nll(params, held)], [0]
        best, best_step, best_val, p, stale, taken = params, 0, curve[0], params, 0, 0
        for i in range(1, steps + 1):
            pick = rng.integers(0, len(fit[0]), size=batch)
            p, opt = step(p, opt, tuple(jnp.asarray(x[pick]) for x in fit), jax.random.fold_in(key, i), lr_arg)
            progress.advance(1)
            taken = i
            fine = fine_every > 0 and i <= fine_until
            if i % (fine_every if fine else check_every) == 0 or i == steps:
                curve.append(held_nll(p, held))
                checked.append(i)
                if np.isfinite(curve[-1]) and not curve[-1] >= best_val:
                    best, best_step, best_val, stale = p, i, curve[-1], 0
                else:
                    stale += 1
                    if patience and stale >= patience:
                        break
        if on_end is not None:
            on_end(taken)
        return best, {"steps": best_step, "best": round(float(best_val), 4), "best_exact": float(best_val),
                      "held_nll": [round(float(x), 4) for x in curve], "checked": checked, "check_every": check_every,
                      "fit_windows": int(len(fit[0])), "held_windows": int(len(held[0]))}

    return fit_oracle
