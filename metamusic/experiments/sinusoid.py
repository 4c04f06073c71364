"""Finn et al. (2017)'s sinusoid regression: the check that the meta core reproduces MAML.

Tasks: y = A sin(x - phi), A ~ U[0.1, 5], phi ~ U[0, pi], x ~ U[-5, 5]; K support
and K query points per task; a 2 x 40 ReLU MLP (its last layer is `head`, so ANIL
works); MSE. Synthetic by design: a correctness check with known published
behaviour, not music data. Methods: `meta.algorithm` (one or more registered
algorithms) and the joint baseline (the paper's Figure 3 "pretrained" model).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from metamusic import baselines
from metamusic.data.episodes import step_rng
from metamusic.errors import check_range
from metamusic.experiments import base, masks, optim, validation
from metamusic.experiments.family import Family
from metamusic.meta.algorithm import InnerSpec, Task
from metamusic.meta.registry import ALGORITHMS, Hooks, make_algorithm
from metamusic.models.mlp import MLP


def sample_tasks(rng: np.random.Generator, batch: int, k: int, query: int | None = None) -> Task:
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


def validate(cfg) -> None:
    validation.validate_loop(cfg)
    check_range("data.shots", cfg.data.shots, 1)
    for h in cfg.model.hidden:
        check_range("model.hidden (each)", h, 1)
    validation.algorithm_names(cfg, ALGORITHMS)
    check_range("meta.inner_steps", cfg.meta.inner_steps, 1)
    validation.check_positive("meta.inner_lr", cfg.meta.inner_lr)
    validation.check_positive("optim.lr", cfg.optim.lr)
    check_range("eval.steps", cfg.eval.steps, 1)
    check_range("eval.episodes", cfg.eval.episodes, 2)
    check_range("baselines.joint_steps", cfg.baselines.joint_steps, 1)
    if not cfg.baselines.finetune_lrs:
        validation.raise_bad("baselines.finetune_lrs", cfg.baselines.finetune_lrs, "a non-empty list of lrs")
    for lr in cfg.baselines.finetune_lrs:
        validation.check_positive("baselines.finetune_lrs (each)", lr)


def build(cfg, corpus=None) -> base.Experiment:
    model = MLP(tuple(cfg.model.hidden))
    loss_fn = make_loss(model)
    inner = InnerSpec(cfg.meta.inner_steps, cfg.meta.inner_lr)

    def algorithm(name):
        if baselines.is_joint(name):
            return baselines.joint_algorithm(loss_fn, inner)
        return make_algorithm(name, loss_fn, inner, Hooks(head_mask=masks.head_mask))

    def train_sampler(name):
        return lambda step: sample_tasks(step_rng(cfg.seed, step), cfg.meta.batch, cfg.data.shots)

    return base.Experiment(
        family="sinusoid", cfg=cfg, corpus=None, loss_fn=loss_fn,
        init_params=lambda: model.init(jax.random.PRNGKey(cfg.seed), jnp.zeros((1, 1))),
        algorithms=tuple(validation.algorithm_names(cfg, ALGORITHMS)), baselines=(baselines.JOINT,),
        algorithm=algorithm, optimizer=lambda name: optim.make_optimizer(cfg.optim.lr),
        train_steps=lambda name: cfg.baselines.joint_steps if baselines.is_joint(name) else cfg.steps,
        train_sampler=train_sampler, val_eval=lambda name, algo: None, model=model)


FAMILY = Family("sinusoid", validate, build, evaluator="metamusic.eval.sinusoid:evaluate", script="run_maml.py",
                uses_corpus=False)
