"""Training without an inner loop: the gradient of the loss on the whole task.

Two users, one code path through the meta core and the loop:
  * joint training over all meta-train tasks (the transfer-learning baseline,
    `metamusic.baselines`), whose batch is a task's support and query together;
  * metric-based classifiers (relation and prototypical networks), whose "task" is
    one episode and whose loss already compares its support with its query.
`adapt` is plain SGD with the `InnerSpec` it was made with (0 steps by default):
fine-tuning is this algorithm made with the fine-tuning lr and steps.
"""

from __future__ import annotations

from typing import Callable

import jax

from metamusic.meta import inner as inner_lib
from metamusic.meta.algorithm import Algorithm, InnerSpec, aux_metrics


def make(name: str, loss_fn: Callable, inner: InnerSpec = InnerSpec(steps=0), *,
         batch_of: Callable = lambda task: task) -> Algorithm:
    """An `Algorithm` that trains on `batch_of(task)` directly.

    Args:
      loss_fn: (params, batch, key) -> (loss, aux); scalar aux entries are logged as train/<name>.
      inner: the SGD that `adapt` runs (steps 0: adapt returns the params as they are).
      batch_of: task -> the batch the loss sees.
    """
    def init(params):
        return {"params": params}

    def task_grad(meta, task, key, outer_step, phase):
        (value, aux), grads = jax.value_and_grad(lambda m: loss_fn(m["params"], batch_of(task), key),
                                                 has_aux=True)(meta)
        metrics = {"loss": value, "outer/query_loss": value}  # the task's loss is its "query" loss here
        metrics.update(aux_metrics(aux))
        return grads, metrics

    def adapt(meta, support, key, query=None, steps=None):
        return inner_lib.adapt(loss_fn, meta["params"], support, key, steps=inner.steps if steps is None else steps,
                               lrs=inner.lr, query=query, remat=inner.remat, unroll=inner.unroll)

    return Algorithm(name, init, task_grad, adapt)
