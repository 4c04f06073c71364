"""Reptile (Nichol et al. 2018): move the initialization toward task-adapted weights.

The outer "gradient" is (params - adapted params), averaged over the meta-batch,
handed to the outer optimizer like any gradient (SGD with lr = epsilon is the
paper's update; Adam on it is the paper's variant too). The inner loop trains on
support and query together: Reptile has no separate query loss.
"""

from __future__ import annotations

import jax

from metamusic.meta import inner as inner_lib
from metamusic.meta.algorithm import Algorithm, InnerSpec, aux_metrics, concat_batches


def make(loss_fn, inner: InnerSpec) -> Algorithm:
    def init(params):
        return {"params": params}

    def run_inner(meta, support, key, query=None, steps=None):
        return inner_lib.adapt(loss_fn, meta["params"], support, key,
                               steps=inner.steps if steps is None else steps, lrs=inner.lr, query=query,
                               remat=inner.remat, unroll=inner.unroll)

    def task_grad(meta, task, key, outer_step, phase):
        k_in, k_q = jax.random.split(key)
        res = run_inner(meta, concat_batches(task.support, task.query), k_in)
        grads = {"params": jax.tree.map(lambda p, q: p - q, meta["params"], res.params)}
        loss, aux = loss_fn(res.params, task.query, k_q)
        return grads, {"loss": loss, "outer/query_loss": loss, **aux_metrics(aux),
                       "inner/support_loss_start": res.support_losses[0],
                       "inner/support_loss_before_last_step": res.support_losses[-1]}

    return Algorithm("reptile", init, task_grad, run_inner)
