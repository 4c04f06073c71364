"""Sinusoid evaluation (Finn et al. 2017, Figure 3): query MSE after 0..eval.steps SGD steps on fresh tasks.

Meta-learned inits adapt with their inner lr; the joint baseline with the lr of
`baselines.finetune_lrs` that is best after eval.steps steps on separate validation
tasks (so the baseline is not handicapped by an lr chosen for MAML).
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from metamusic import baselines
from metamusic.experiments import base
from metamusic.experiments.sinusoid import sample_tasks


def evaluate(exp: base.Experiment, workdir: str) -> dict:
    cfg = exp.cfg
    n, steps = cfg.eval.episodes, cfg.eval.steps
    tasks = sample_tasks(np.random.default_rng([cfg.seed, 10**6]), n, cfg.data.shots, query=100)
    val = sample_tasks(np.random.default_rng([cfg.seed, 10**6 + 1]), n, cfg.data.shots, query=100)
    keys = jax.random.split(jax.random.PRNGKey(cfg.seed), n)

    def curves(algo, meta, tasks):
        f = lambda t, k: algo.adapt(meta, t.support, k, query=t.query, steps=steps).query_losses
        return jax.jit(jax.vmap(f))(tasks, keys)

    out = {}
    for name in exp.methods:
        meta = base.restore(exp, workdir, name)
        algo, lr = exp.algorithm(name), cfg.meta.inner_lr
        if baselines.is_joint(name):
            tuning = baselines.Tuning(tuple(cfg.baselines.finetune_lrs), float, steps, False,
                                      lambda m, lr_, s: curves(baselines.finetune_algorithm(exp.loss_fn, lr_, s), m,
                                                               val).mean(0))
            choice = baselines.choose(tuning, meta)
            algo, lr = baselines.finetune_algorithm(exp.loss_fn, choice.lr, steps), choice.lr
        losses = curves(algo, meta, tasks)
        ci = 1.96 * np.asarray(losses.std(0)) / np.sqrt(n)
        out[name] = {"mse": np.asarray(losses.mean(0)).tolist(), "ci95": ci.tolist(), "lr": lr}
    with open(os.path.join(workdir, "eval.json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(workdir, "eval.md"), "w") as f:
        f.write(report(out, n, cfg.data.shots))
    return out


def report(out: dict, tasks: int, shots: int) -> str:
    """eval.md: query MSE (+- 95% CI over tasks) before adaptation, after one SGD step and after the last, as the
    other families' reports give their tables."""
    last = len(next(iter(out.values()))["mse"]) - 1
    cols = sorted({0, min(1, last), last})
    lines = [f"Query MSE after k SGD steps on K={shots} support points, {tasks} fresh tasks (+- 95% CI)", "",
             "| method | inner lr | " + " | ".join(f"k={k}" for k in cols) + " |",
             "| --- | --- | " + " | ".join("---" for _ in cols) + " |"]
    for name, r in out.items():
        lines.append(f"| {name} | {r['lr']:g} | " + " | ".join(f"{r['mse'][k]:.3f} +- {r['ci95'][k]:.3f}" for k in cols)
                     + " |")
    return "\n".join(lines) + "\n"
