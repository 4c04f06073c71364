"""Few-shot adaptation on unseen (meta-test) styles, with baselines and 95% CIs.

For every K in cfg.eval.shots, `cfg.eval.episodes` tasks are drawn from meta-test
styles with a fixed seed: K support tunes from each style's support pool, Q query
tunes from its query pool (never the same tunes). Each method adapts on the support
windows and is scored on the query windows before adaptation and after each step:
  <algorithm>   every meta-trained variant in the workdir, with its own inner loop;
  joint         the jointly trained model, not adapted (baseline a);
  finetune      the joint model fine-tuned by SGD on the support (baseline b), its lr
                and number of steps chosen on meta-val tasks, never on meta-test;
  scratch       a freshly initialized model trained on the support only (baseline c),
                its lr and steps also chosen on meta-val.
Reported per step: query NLL per event (nats, bits), perplexity, event accuracy,
each mean +- 1.96 standard errors over episodes.
"""

from __future__ import annotations

import json
import math
import os

import jax
import numpy as np

from metamusic.data import TaskSampler
from metamusic.train import checkpoint as ckpt_lib
from metamusic.train import melody as mel

LN2 = math.log(2.0)


def _episodes(cfg, corpus, split: str, shots: int, n: int, seed_tag: int):
    sampler = TaskSampler(corpus, corpus.styles_in(split), shots=shots, queries=cfg.data.queries,
                          length=cfg.data.length, pool="support/query")
    return sampler.sample(np.random.default_rng([cfg.seed, seed_tag, shots]), n)


def _curves(adapt, meta, tasks, steps: int, chunk: int, seed: int):
    """Per-episode query NLL and accuracy after 0..steps inner steps: arrays [episodes, steps+1]."""
    @jax.jit
    def run(meta, t, keys):
        res = jax.vmap(lambda tt, k: adapt(meta, tt.support, k, query=tt.query, steps=steps))(t, keys)
        return res.query_losses, res.query_aux["accuracy"]

    n = len(tasks.style)
    nll, acc = [], []
    for a in range(0, n, chunk):
        sl = slice(a, min(n, a + chunk))
        part = mel.to_task(type(tasks)(*(x[sl] for x in tasks)))
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), a), sl.stop - sl.start)
        q, ac = run(meta, part, keys)
        nll.append(np.asarray(q))
        acc.append(np.asarray(ac))
    return np.concatenate(nll), np.concatenate(acc)


def _summary(nll: np.ndarray, acc: np.ndarray) -> dict:
    n = nll.shape[0]
    m, se = nll.mean(0), nll.std(0, ddof=1) / math.sqrt(n)
    am, ase = acc.mean(0), acc.std(0, ddof=1) / math.sqrt(n)
    return {"episodes": n, "nll_nats": m.tolist(), "nll_nats_ci95": (1.96 * se).tolist(),
            "nll_bits": (m / LN2).tolist(), "nll_bits_ci95": (1.96 * se / LN2).tolist(),
            "perplexity": np.exp(m).tolist(), "perplexity_ci95": [np.exp(m - 1.96 * se).tolist(),
                                                                  np.exp(m + 1.96 * se).tolist()],
            "accuracy": am.tolist(), "accuracy_ci95": (1.96 * ase).tolist()}


def _params_after(adapt, meta, steps=None):
    """(support, key) -> adapted params, compiled once per method (meta passed as an argument)."""
    run = jax.jit(lambda m, support, key: adapt(m, support, key, steps=steps).params)
    return lambda support, key: run(meta, support, key)


def _finetune_adapt(algo, lr):
    return lambda meta, support, key, query=None, steps=None: algo.adapt(meta, support, key, query=query,
                                                                         steps=steps, lr=lr)


def _tune(cfg, s, algo, meta, lrs, max_steps: int) -> tuple[float, int, dict]:
    """The (lr, steps) with the lowest meta-val query NLL: lr in `lrs`, steps in 1..max_steps.

    Tuned on meta-val episodes (K = the middle of cfg.eval.shots), never on meta-test.
    """
    shots = sorted(cfg.eval.shots)[len(cfg.eval.shots) // 2]
    tasks = _episodes(cfg, s.corpus, "val", shots, cfg.eval.tune_episodes, 1)
    scores, best = {}, (float("inf"), lrs[0], max_steps)
    for lr in lrs:
        nll, _ = _curves(_finetune_adapt(algo, lr), meta, tasks, max_steps, cfg.eval.chunk, cfg.seed)
        curve = np.where(np.isfinite(nll.mean(0)), nll.mean(0), np.inf)
        scores[str(lr)] = [round(float(x), 4) for x in curve]
        k = 1 + int(np.argmin(curve[1:]))
        if curve[k] < best[0]:
            best = (float(curve[k]), lr, k)
    return best[1], best[2], scores


def evaluate(cfg, workdir: str, corpus=None) -> dict:
    """Runs the evaluation; writes workdir/eval.json, eval.md and eval.png; returns the results."""
    s = mel.setup(cfg, corpus)
    out = {"config": {"shots": list(cfg.eval.shots), "episodes": cfg.eval.episodes, "queries": cfg.data.queries,
                      "length": cfg.data.length, "test_styles": s.corpus.styles_in("test")},
           "methods": {}, "tuning": {}}
    trained = {}
    for name in mel.algorithms(cfg) + ["pretrain"]:
        algo, _, template = mel.template_state(cfg, s, name)
        trained[name] = (algo, ckpt_lib.load(os.path.join(workdir, name), template).meta)
    p_algo, p_meta = trained.pop("pretrain")
    ft_lr, ft_steps, ft_scores = _tune(cfg, s, p_algo, p_meta, cfg.eval.finetune_lrs, cfg.eval.finetune_steps)
    fresh = {"params": mel.init_params(cfg, s)}
    sc_lr, sc_steps, sc_scores = _tune(cfg, s, p_algo, fresh, cfg.eval.scratch_lrs, cfg.eval.scratch_steps)
    out["tuning"] = {"finetune": {"lr": ft_lr, "steps": ft_steps, "val_nll_per_step": ft_scores},
                     "scratch": {"lr": sc_lr, "steps": sc_steps, "val_nll_per_step": sc_scores}}
    for shots in cfg.eval.shots:
        tasks = _episodes(cfg, s.corpus, "test", shots, cfg.eval.episodes, 2)
        res = {}
        for name, (algo, meta) in trained.items():
            res[name] = _summary(*_curves(algo.adapt, meta, tasks, cfg.eval.steps, cfg.eval.chunk, cfg.seed))
        ft_nll, ft_acc = _curves(_finetune_adapt(p_algo, ft_lr), p_meta, tasks, ft_steps, cfg.eval.chunk, cfg.seed)
        res["finetune"] = _summary(ft_nll, ft_acc)
        res["joint"] = _summary(ft_nll[:, :1], ft_acc[:, :1])  # the same model before any step
        res["scratch"] = _summary(*_curves(_finetune_adapt(p_algo, sc_lr), fresh, tasks, sc_steps,
                                           cfg.eval.chunk, cfg.seed))
        out["methods"][f"K={shots}"] = res
    if cfg.eval.fidelity.scorer:
        from metamusic.eval import sample_fidelity

        adapters = {name: _params_after(algo.adapt, meta) for name, (algo, meta) in trained.items()}
        adapters["joint"] = lambda support, key: p_meta["params"]
        adapters["finetune"] = _params_after(_finetune_adapt(p_algo, ft_lr), p_meta, ft_steps)
        out["style_fidelity"] = sample_fidelity.evaluate(cfg, s, adapters, cfg.eval.fidelity.scorer)
    with open(os.path.join(workdir, "eval.json"), "w") as f:
        json.dump(out, f, indent=1)
    from metamusic.eval import report

    with open(os.path.join(workdir, "eval.md"), "w") as f:
        f.write(report.markdown(out))
    report.plot(out, os.path.join(workdir, "eval.png"))
    return out
