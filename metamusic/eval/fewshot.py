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

from metamusic import baselines
from metamusic.eval.chunked import adapt_curves
from metamusic.experiments import base, melody

LN2 = math.log(2.0)


def _curves(adapt, meta, tasks, steps: int, cfg):
    """Per-episode query NLL and accuracy after 0..steps inner steps: arrays [episodes, steps+1]."""
    nll, aux = adapt_curves(adapt, meta, tasks, steps, cfg.eval.chunk, cfg.seed, base.to_task)
    return nll, aux["accuracy"]


def _summary(nll: np.ndarray, acc: np.ndarray) -> dict:
    n = nll.shape[0]
    m, se = nll.mean(0), nll.std(0, ddof=1) / math.sqrt(n)
    am, ase = acc.mean(0), acc.std(0, ddof=1) / math.sqrt(n)
    return {"episodes": n, "nll_nats": m.tolist(), "nll_nats_ci95": (1.96 * se).tolist(),
            "nll_bits": (m / LN2).tolist(), "nll_bits_ci95": (1.96 * se / LN2).tolist(),
            "perplexity": np.exp(m).tolist(), "perplexity_ci95": [np.exp(m - 1.96 * se).tolist(),
                                                                  np.exp(m + 1.96 * se).tolist()],
            "accuracy": am.tolist(), "accuracy_ci95": (1.96 * ase).tolist()}


def adapted_params(algo, meta, steps=None):
    """(support, key) -> adapted params, compiled once per method (meta passed as an argument)."""
    run = jax.jit(lambda m, support, key: algo.adapt(m, support, key, steps=steps).params)
    return lambda support, key: run(meta, support, key)


def adapters(exp: base.Experiment, workdir: str, steps: int | None = None) -> tuple[dict, dict]:
    """Every method of a melody run as (algorithm, meta), the joint model's fine-tuned and from-scratch
    variants included (their settings chosen on meta-val), and the tuning record.

    Meta-learned algorithms adapt with `steps` inner steps (None: their trained count).
    """
    methods = {name: (exp.algorithm(name), base.restore(exp, workdir, name)) for name in exp.algorithms}
    joint_meta = base.restore(exp, workdir, baselines.JOINT)
    ft = baselines.finetune_choice(workdir, melody.tuning(exp, baselines.FINETUNE), joint_meta)
    fresh = {"params": exp.init_params()}
    sc = baselines.choose(melody.tuning(exp, baselines.SCRATCH), fresh)
    methods[baselines.JOINT] = (exp.algorithm(baselines.JOINT), joint_meta)
    methods[baselines.FINETUNE] = (baselines.finetune_algorithm(exp.loss_fn, ft.lr, ft.steps, exp.cfg.meta.remat),
                                   joint_meta)
    methods[baselines.SCRATCH] = (baselines.finetune_algorithm(exp.loss_fn, sc.lr, sc.steps, exp.cfg.meta.remat),
                                  fresh)
    return methods, {baselines.FINETUNE: ft.summary(), baselines.SCRATCH: sc.summary()}


def evaluate(exp: base.Experiment, workdir: str) -> dict:
    """Runs the evaluation; writes workdir/eval.json, eval.md and eval.png; returns the results."""
    cfg, corpus = exp.cfg, exp.corpus
    out = {"config": {"shots": list(cfg.eval.shots), "episodes": cfg.eval.episodes, "queries": cfg.data.queries,
                      "length": cfg.data.length, "test_styles": corpus.styles_in("test")},
           "methods": {}}
    methods, out["tuning"] = adapters(exp, workdir)
    ft_algo, joint_meta = methods[baselines.FINETUNE]
    sc_algo, fresh = methods[baselines.SCRATCH]
    for shots in cfg.eval.shots:
        tasks = melody.episodes(cfg, corpus, "test", shots, cfg.eval.episodes, 2)
        res = {}
        for name in exp.algorithms:
            algo, meta = methods[name]
            res[name] = _summary(*_curves(algo.adapt, meta, tasks, cfg.eval.steps, cfg))
        ft_nll, ft_acc = _curves(ft_algo.adapt, joint_meta, tasks, out["tuning"][baselines.FINETUNE]["steps"], cfg)
        res[baselines.FINETUNE] = _summary(ft_nll, ft_acc)
        res[baselines.JOINT] = _summary(ft_nll[:, :1], ft_acc[:, :1])  # the same model before any step
        sc_steps = out["tuning"][baselines.SCRATCH]["steps"]
        res[baselines.SCRATCH] = _summary(*_curves(sc_algo.adapt, fresh, tasks, sc_steps, cfg))
        out["methods"][f"K={shots}"] = res
    if cfg.eval.scorer:
        from metamusic.eval import sample_fidelity

        fid = {name: adapted_params(algo, meta, cfg.eval.steps if name in exp.algorithms else None)
               for name, (algo, meta) in methods.items() if name != baselines.SCRATCH}
        out["style_fidelity"] = sample_fidelity.evaluate(exp, fid, cfg.eval.scorer)
    with open(os.path.join(workdir, "eval.json"), "w") as f:
        json.dump(out, f, indent=1)
    from metamusic.eval import report

    with open(os.path.join(workdir, "eval.md"), "w") as f:
        f.write(report.markdown(out))
    report.plot(out, os.path.join(workdir, "eval.png"))
    return out

