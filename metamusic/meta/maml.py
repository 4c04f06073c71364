"""The MAML family as one meta-loss with options.

  maml     second-order MAML (Finn et al. 2017): differentiate through the inner steps.
  fomaml   first-order MAML: inner gradients treated as constants.
  anil     ANIL (Raghu et al. 2020): adapt only the head, second order.
  metasgd  Meta-SGD (Li et al. 2017): a learned lr per parameter element.
  mamlpp   MAML++ (Antoniou et al. 2019): learned lr per tensor and step, multi-step
           query loss with weights annealed onto the last step, first-order for the
           first `first_order_steps` outer steps then second order. (Its cosine
           meta-lr schedule is the optimizer's, set in the config.)
  cavia    CAVIA (Zintgraf et al. 2019): adapt only a context vector that conditions the
           model (the leaves `context_mask` marks), with its own inner lr, second order;
           every other parameter is shared across tasks and learned in the outer loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from metamusic.meta import inner as inner_lib
from metamusic.meta.algorithm import Algorithm, InnerSpec
from metamusic.errors import MetamusicError


def msl_weights(outer_step, steps: int, anneal_steps: int):
    """MAML++ multi-step loss weights: uniform at step 0, all on the last step after `anneal_steps`."""
    a = jnp.clip(outer_step / max(anneal_steps, 1), 0.0, 1.0)
    uniform = jnp.full((steps,), 1.0 / steps)
    last = jax.nn.one_hot(steps - 1, steps)
    return (1 - a) * uniform + a * last


def make(name: str, loss_fn, inner: InnerSpec, *, head_mask=None, msl_anneal_steps: int = 1000,
         first_order_steps: int = 0, context_mask=None, context_lr: float | None = None, **_) -> Algorithm:
    learned = {"metasgd": "per_param", "mamlpp": "per_step"}.get(name)
    if name == "anil" and head_mask is None:
        raise MetamusicError("anil needs head_mask: params -> pytree of 0/1 marking the head")
    if name == "cavia" and context_mask is None:
        raise MetamusicError("cavia needs context_mask: params -> pytree of 0/1 marking the context vector "
                             "(a model with a context, e.g. model.context_dim > 0)")

    def init(params):
        meta = {"params": params}
        if learned:
            meta["lrs"] = inner_lib.init_lrs(params, inner.lr, learned, inner.steps)
        return meta

    def run_inner(meta, support, key, query=None, steps=None, first_order=False):
        steps = inner.steps if steps is None else steps
        lrs = meta.get("lrs", context_lr if name == "cavia" and context_lr else inner.lr)
        if learned == "per_step" and steps != inner.steps:
            # evaluation beyond the trained number of steps reuses the last step's lrs
            idx = jnp.minimum(jnp.arange(steps), inner.steps - 1)
            lrs = jax.tree.map(lambda v: v[idx], lrs)
        mask = (head_mask(meta["params"]) if name == "anil"
                else context_mask(meta["params"]) if name == "cavia" else None)
        return inner_lib.adapt(loss_fn, meta["params"], support, key, steps=steps, lrs=lrs, mask=mask,
                               first_order=first_order, per_step_lrs=learned == "per_step", query=query,
                               remat=inner.remat, unroll=inner.unroll)

    def meta_loss(meta, task, key, outer_step, first_order):
        k_in, k_q = jax.random.split(key)
        if name == "mamlpp":
            res = run_inner(meta, task.support, k_in, query=task.query, first_order=first_order)
            w = msl_weights(outer_step, inner.steps, msl_anneal_steps)
            loss = (w * res.query_losses[1:]).sum()
            final = res.query_losses[-1]
        else:
            res = run_inner(meta, task.support, k_in, first_order=first_order)
            loss, _ = loss_fn(res.params, task.query, k_q)
            final = loss
        return loss, {"loss": loss, "outer/query_loss": final,
                      "inner/support_loss_start": res.support_losses[0],
                      "inner/support_loss_before_last_step": res.support_losses[-1]}

    def task_grad(meta, task, key, outer_step, phase):
        first_order = name == "fomaml" or (name == "mamlpp" and phase == "first_order")
        grads, metrics = jax.grad(meta_loss, has_aux=True)(meta, task, key, outer_step, first_order)
        return grads, metrics

    def phase(step: int):
        return "first_order" if name == "mamlpp" and step < first_order_steps else None

    return Algorithm(name, init, task_grad, run_inner, phase)
