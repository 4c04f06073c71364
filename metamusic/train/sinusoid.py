"""Finn et al. (2017)'s sinusoid regression: the check that the meta core reproduces MAML.

Tasks: y = A sin(x - phi), A ~ U[0.1, 5], phi ~ U[0, pi], x ~ U[-5, 5]; K support
and K query points per task; a 2 x 40 ReLU MLP; MSE. Synthetic by design: it is a
correctness check with known published behaviour, not music data.
Evaluation: on fresh tasks, MSE on 100 evenly spaced query points after 0..10 SGD
steps on K support points, for the meta-learned init and for a model pretrained
jointly on all tasks (the paper's Figure 3 baseline).
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metamusic.data.episodes import step_rng
from metamusic.meta.algorithm import InnerSpec, Task, make_algorithm
from metamusic.meta.outer import init_state, make_outer_step
from metamusic.models.mlp import MLP
from metamusic.train import checkpoint as ckpt_lib
from metamusic.train.loop import LoopConfig, run


def sample_tasks(rng: np.random.Generator, batch: int, k: int, query: int | None = None):
    """Support (x, y) [batch, k, 1] and query points (random, or `query` evenly spaced)."""
    amp = rng.uniform(0.1, 5.0, (batch, 1, 1))
    phase = rng.uniform(0.0, np.pi, (batch, 1, 1))
    xs = rng.uniform(-5, 5, (batch, k, 1))
    xq = rng.uniform(-5, 5, (batch, k, 1)) if query is None else np.broadcast_to(
        np.linspace(-5, 5, query)[None, :, None], (batch, query, 1))
    f = lambda x: amp * np.sin(x - phase)
    as32 = lambda a: jnp.asarray(a, jnp.float32)
    return Task((as32(xs), as32(f(xs))), (as32(xq), as32(f(xq))))


def make_loss(model):
    def loss_fn(params, batch, key):
        x, y = batch
        err = jnp.mean((model.apply(params, x) - y) ** 2)
        return err, {"mse": err}

    return loss_fn


def train(cfg, workdir: str, algorithm: str | None = None):
    """Meta-trains `algorithm` (default cfg.meta.algorithm) on sinusoid tasks in workdir/<algorithm>."""
    name = algorithm or cfg.meta.algorithm
    model = MLP(tuple(cfg.model.hidden))
    loss_fn = make_loss(model)
    algo = make_algorithm(name, loss_fn, InnerSpec(cfg.meta.inner_steps, cfg.meta.inner_lr))
    tx = optax.adam(cfg.optim.lr)
    params = model.init(jax.random.PRNGKey(cfg.seed), jnp.zeros((1, 1)))
    state = init_state(algo, tx, params)
    step = make_outer_step(algo, tx)
    loop = LoopConfig.from_config(cfg, cfg.steps)
    sample = lambda s: sample_tasks(step_rng(cfg.seed, s), cfg.meta.batch, cfg.data.shots)
    return run(os.path.join(workdir, name), state, step, sample, loop, phase_fn=algo.phase, name=name)


def evaluate(cfg, workdir: str, n_tasks: int = 600, steps: int = 10) -> dict:
    """Query MSE after 0..steps SGD steps on fresh tasks, per method.

    The meta-learned init adapts with its inner lr; the pretrained baseline with the
    lr of cfg.meta.finetune_lrs that is best after `steps` steps on separate
    validation tasks (so the baseline is not handicapped by an lr chosen for MAML).
    """
    model = MLP(tuple(cfg.model.hidden))
    loss_fn = make_loss(model)
    tasks = sample_tasks(np.random.default_rng([cfg.seed, 10**6]), n_tasks, cfg.data.shots, query=100)
    val = sample_tasks(np.random.default_rng([cfg.seed, 10**6 + 1]), n_tasks, cfg.data.shots, query=100)
    keys = jax.random.split(jax.random.PRNGKey(cfg.seed), n_tasks)
    out = {}
    for name in (cfg.meta.algorithm, "pretrain"):
        algo = make_algorithm(name, loss_fn, InnerSpec(cfg.meta.inner_steps, cfg.meta.inner_lr))
        tx = optax.adam(cfg.optim.lr)
        template = init_state(algo, tx, model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1))))
        state = ckpt_lib.load(os.path.join(workdir, name), template)

        def curves(meta, tasks, lr):
            kw = {} if name != "pretrain" else {"lr": lr}
            f = lambda t, k: algo.adapt(meta, t.support, k, query=t.query, steps=steps, **kw).query_losses
            return jax.jit(jax.vmap(f))(tasks, keys)

        lr = cfg.meta.inner_lr
        if name == "pretrain":
            val_mse = {str(c): float(curves(state.meta, val, c)[:, -1].mean()) for c in cfg.meta.finetune_lrs}
            lr = min(cfg.meta.finetune_lrs, key=lambda c: val_mse[str(c)])
        losses = curves(state.meta, tasks, lr)
        mean = np.asarray(losses.mean(0))
        ci = 1.96 * np.asarray(losses.std(0)) / np.sqrt(n_tasks)
        out[name] = {"mse": mean.tolist(), "ci95": ci.tolist(), "lr": lr}
    with open(os.path.join(workdir, "eval.json"), "w") as f:
        json.dump(out, f, indent=1)
    return out
