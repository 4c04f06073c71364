"""The one registry of meta-learning algorithms: name -> factory.

Every factory has the signature `(loss_fn, inner: InnerSpec, *, head_mask=None,
**options) -> Algorithm`. Config validation, the experiments and the conformance
tests read `ALGORITHMS`, so registering a new algorithm here is the one edit that
makes it trainable, evaluable and tested. Baselines (joint training, fine-tuning,
training from scratch) are not algorithms: see `metamusic.baselines`.
"""

from __future__ import annotations

import functools
from typing import Callable

from metamusic.meta import amortized, maml, reptile
from metamusic.meta.algorithm import Algorithm, InnerSpec
from metamusic.errors import MetamusicError


def _maml_family(name):
    return functools.partial(maml.make, name)


def _reptile(loss_fn, inner, *, head_mask=None, **options):
    return reptile.make(loss_fn, inner)  # no head mask, no MAML++ options


def _amortized(loss_fn, inner, *, head_mask=None, encoder_init=None, condition=None, **options):
    return amortized.make("amortized", loss_fn, inner, encoder_init=encoder_init, condition=condition)


ALGORITHMS: dict[str, Callable[..., Algorithm]] = {
    "maml": _maml_family("maml"),
    "fomaml": _maml_family("fomaml"),
    "anil": _maml_family("anil"),
    "metasgd": _maml_family("metasgd"),
    "mamlpp": _maml_family("mamlpp"),
    "cavia": _maml_family("cavia"),
    "reptile": _reptile,
    "amortized": _amortized,
}


# Algorithms whose inner loop gives every task its own network weights (all of them, or all but a
# context). Under vmap their per-time-step matmuls become batched dots with one weight matrix per
# task, which XLA:CPU runs slowly; one task at a time (lax.map) measured 1.3x faster for FOMAML and
# 1.35x for second-order MAML, with 7x less XLA temp memory (benchmarks/meta_step_bench.py
# --task-map=vmap,map, 2-core CPU, 2026-12-03). The others share the weights across tasks, so
# vmap folds the tasks into one larger matmul.
PER_TASK_WEIGHTS = ("maml", "fomaml", "metasgd", "mamlpp", "reptile")


def task_map_for(name: str, choice: str = "auto") -> str:
    """How the outer step runs the tasks of algorithm `name` (`meta.outer.task_grads`): `choice`
    ("vmap" or "map"), or with "auto" map for PER_TASK_WEIGHTS and vmap for every other method
    (baselines included)."""
    if choice == "auto":
        return "map" if name in PER_TASK_WEIGHTS else "vmap"
    return choice


def make_algorithm(name: str, loss_fn: Callable, inner: InnerSpec, *, head_mask: Callable | None = None,
                   **options) -> Algorithm:
    """An algorithm by name.

    Args:
      loss_fn: (params, batch, key) -> (loss, aux).
      head_mask: params -> pytree of 0/1, the parameters ANIL adapts (the output head).
      options: msl_anneal_steps, first_order_steps (MAML++); context_mask (params -> 0/1 on the context
        vector) and context_lr (its inner lr) for CAVIA; encoder_init and condition for amortized;
        the others ignore them.
    """
    if name not in ALGORITHMS:
        raise MetamusicError(f"meta.algorithm={name!r} is not allowed; choose one of {list(ALGORITHMS)}")
    return ALGORITHMS[name](loss_fn, inner, head_mask=head_mask, **options)
