"""Joint training, the transfer-learning baseline: one model on all tasks' data, no inner loop.

Fine-tuning it on a new style's support set (the `adapt` below, plain SGD) is the
baseline meta-learning must beat; MuML found it a strong one.
"""

from __future__ import annotations

import jax

from metamusic.meta import inner as inner_lib
from metamusic.meta.algorithm import Algorithm, InnerSpec, concat_batches


def make(loss_fn, inner: InnerSpec) -> Algorithm:
    def init(params):
        return {"params": params}

    def run_inner(meta, support, key, query=None, steps=None, lr=None):
        return inner_lib.adapt(loss_fn, meta["params"], support, key,
                               steps=inner.steps if steps is None else steps,
                               lrs=inner.lr if lr is None else lr, query=query, remat=inner.remat, unroll=inner.unroll)

    def task_grad(meta, task, key, outer_step, phase):
        def loss(m):
            return loss_fn(m["params"], concat_batches(task.support, task.query), key)

        (value, _), grads = jax.value_and_grad(loss, has_aux=True)(meta)
        return grads, {"loss": value, "outer/query_loss": value}

    return Algorithm("pretrain", init, task_grad, run_inner)
