"""What every meta-learning algorithm provides: the `Algorithm` contract and its small types.

An `Algorithm` is a bundle of pure functions over a `meta` pytree (the thing the
outer optimizer updates: initial params, plus learned inner lrs for Meta-SGD and
MAML++), like an optax `GradientTransformation`. The training loop only ever
calls these, so algorithms plug into one loop. The registry that builds one by
name is `metamusic.meta.registry`; this module imports no algorithm, so there is
no import cycle.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Hashable, NamedTuple


class Task(NamedTuple):
    """One task: `support` and `query` are whatever batch the loss_fn takes."""

    support: object
    query: object


class Algorithm(NamedTuple):
    name: str
    # params -> meta pytree (what the outer optimizer updates)
    init: Callable
    # (meta, task, key, outer_step, phase) -> (grads like meta, metrics dict of scalars).
    # `phase` is static (e.g. MAML++'s first-order warm-up); the loop jits once per phase.
    task_grad: Callable
    # (meta, support, key, query=None, steps=None) -> inner.InnerResult: adaptation for eval and
    # generation. This is the whole signature: an algorithm's lrs are its own (or in `meta`).
    adapt: Callable
    # outer_step (host int) -> hashable static phase
    phase: Callable[[int], Hashable] = lambda step: None


@dataclasses.dataclass(frozen=True)
class InnerSpec:
    """Inner-loop settings shared by the MAML family and Reptile."""

    steps: int = 5  # SGD steps on the support set
    lr: object = 0.1  # inner SGD learning rate (initial value when learned), or a pytree of lrs
    remat: bool = False  # jax.checkpoint each inner step (memory vs a second forward)
    unroll: bool = True  # unroll the inner steps' scan (faster on XLA:CPU, compile time grows with steps)


def concat_batches(a, b):
    """Support and query batches joined along the example axis (Reptile, joint training)."""
    import jax
    import jax.numpy as jnp

    return jax.tree.map(lambda x, y: jnp.concatenate([x, y], axis=0), a, b)


def aux_metrics(aux) -> dict:
    """A loss's scalar aux entries as metrics `train/<name>` (what the loop logs beside the loss), so every
    algorithm's training tasks show the loss's parts (a GAN's critic statistics, a melody LM's accuracy)."""
    return {f"train/{k}": v for k, v in aux.items() if getattr(v, "ndim", 0) == 0}

