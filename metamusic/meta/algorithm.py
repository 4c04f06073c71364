"""What every meta-learning algorithm provides, and the registry that builds one by name.

An `Algorithm` is a bundle of pure functions over a `meta` pytree (the thing the
outer optimizer updates: initial params, plus learned inner lrs for Meta-SGD and
MAML++). The training loop only ever calls these, so algorithms plug into one loop.
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
    # (meta, support, key, query=None, steps=None) -> inner.InnerResult: adaptation for eval/generation
    adapt: Callable
    # outer_step (host int) -> hashable static phase
    phase: Callable[[int], Hashable] = lambda step: None


@dataclasses.dataclass(frozen=True)
class InnerSpec:
    """Inner-loop settings shared by the MAML family and Reptile."""

    steps: int = 5  # SGD steps on the support set
    lr: float = 0.1  # inner SGD learning rate (initial value when learned)
    remat: bool = False  # jax.checkpoint each inner step (memory vs a second forward)
    unroll: bool = True  # unroll the inner steps' scan (faster on XLA:CPU, compile time grows with steps)


ALGORITHMS = ("maml", "fomaml", "anil", "metasgd", "mamlpp", "reptile", "pretrain")


def make_algorithm(name: str, loss_fn: Callable, inner: InnerSpec, *, head_mask: Callable | None = None,
                   **options) -> Algorithm:
    """An algorithm by name.

    Args:
      loss_fn: (params, batch, key) -> (loss, aux).
      head_mask: params -> pytree of 0/1, the parameters ANIL adapts (the output head).
      options: algorithm-specific settings (see each module).
    """
    from metamusic.meta import maml, pretrain, reptile

    if name in ("maml", "fomaml", "anil", "metasgd", "mamlpp"):
        return maml.make(name, loss_fn, inner, head_mask=head_mask, **options)
    if name == "reptile":
        return reptile.make(loss_fn, inner, **options)
    if name == "pretrain":
        return pretrain.make(loss_fn, inner)
    raise ValueError(f"meta.algorithm={name!r} is not allowed; choose one of {list(ALGORITHMS)}")


def concat_batches(a, b):
    """Support and query batches joined along the example axis (Reptile, pretraining)."""
    import jax
    import jax.numpy as jnp

    return jax.tree.map(lambda x, y: jnp.concatenate([x, y], axis=0), a, b)
