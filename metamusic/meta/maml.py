"""The MAML family as one meta-loss with options; each variant is this function with some options set.

  maml     second-order MAML (Finn et al. 2017): differentiate through the inner steps.
  fomaml   `first_order=True`: inner gradients treated as constants.
  anil     ANIL (Raghu et al. 2020): `adapt_mask` = the head; second order.
  metasgd  Meta-SGD (Li et al. 2017): `learned_lrs="per_param"`, a learned lr per parameter element.
  mamlpp   MAML++ (Antoniou et al. 2019): `learned_lrs="per_step"` (per tensor and step),
           `multi_step_loss=True` (query loss after every step, weights annealed onto the last
           step over `msl_anneal_steps`), first order for the first `first_order_steps` outer
           steps then second order. (Its cosine meta-lr schedule is the optimizer's.)
  cavia    CAVIA (Zintgraf et al. 2019): `adapt_mask` = the context vector that conditions the
           model, with its own inner lr `adapt_lr`; every other parameter is shared across
           tasks and learned in the outer loop.

The registry (`meta.registry`) builds the named variants as `functools.partial`s of `make`,
as optax builds its optimizers from one transformation with options.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from metamusic.meta import inner as inner_lib
from metamusic.meta.algorithm import Algorithm, InnerSpec, aux_metrics
from metamusic.errors import MetamusicError

LEARNED_LRS = (None, "per_param", "per_step")


def msl_weights(outer_step, steps: int, anneal_steps: int):
    """MAML++ multi-step loss weights: uniform at step 0, all on the last step after `anneal_steps`."""
    a = jnp.clip(outer_step / max(anneal_steps, 1), 0.0, 1.0)
    uniform = jnp.full((steps,), 1.0 / steps)
    last = jax.nn.one_hot(steps - 1, steps)
    return (1 - a) * uniform + a * last


def make(loss_fn, inner: InnerSpec, *, name: str = "maml", first_order: bool = False,
         adapt_mask: Optional[Callable] = None, adapt_lr: Optional[float] = None,
         learned_lrs: Optional[str] = None, multi_step_loss: bool = False, msl_anneal_steps: int = 1000,
         first_order_steps: int = 0) -> Algorithm:
    """A member of the MAML family.

    Args:
      loss_fn: (params, batch, key) -> (loss, aux).
      first_order: treat the inner gradients as constants (FOMAML).
      adapt_mask: params -> pytree of 0/1, the parameters the inner loop moves (None: all of them).
      adapt_lr: the inner lr of those parameters when not learned (None: `inner.lr`).
      learned_lrs: None, "per_param" (Meta-SGD) or "per_step" (MAML++): inner lrs learned in the outer loop.
      multi_step_loss: the meta-loss is the weighted query loss after every inner step (MAML++).
      msl_anneal_steps: outer steps over which those weights move onto the last step.
      first_order_steps: outer steps run first order before switching to second order.
    """
    if learned_lrs not in LEARNED_LRS:
        raise MetamusicError(f"learned_lrs={learned_lrs!r}; choose one of {list(LEARNED_LRS)}")

    def init(params):
        meta = {"params": params}
        if learned_lrs:
            meta["lrs"] = inner_lib.init_lrs(params, inner.lr, learned_lrs, inner.steps)
        return meta

    def run_inner(meta, support, key, query=None, steps=None, first_order=False):
        steps = inner.steps if steps is None else steps
        lrs = meta.get("lrs", adapt_lr if adapt_lr else inner.lr)
        if learned_lrs == "per_step" and steps != inner.steps:
            # evaluation beyond the trained number of steps reuses the last step's lrs
            idx = jnp.minimum(jnp.arange(steps), inner.steps - 1)
            lrs = jax.tree.map(lambda v: v[idx], lrs)
        mask = adapt_mask(meta["params"]) if adapt_mask is not None else None
        return inner_lib.adapt(loss_fn, meta["params"], support, key, steps=steps, lrs=lrs, mask=mask,
                               first_order=first_order, per_step_lrs=learned_lrs == "per_step", query=query,
                               remat=inner.remat, unroll=inner.unroll)

    def meta_loss(meta, task, key, outer_step, first_order):
        k_in, k_q = jax.random.split(key)
        if multi_step_loss:
            res = run_inner(meta, task.support, k_in, query=task.query, first_order=first_order)
            w = msl_weights(outer_step, inner.steps, msl_anneal_steps)
            loss = (w * res.query_losses[1:]).sum()
            final = res.query_losses[-1]
            aux = jax.tree.map(lambda a: a[-1], res.query_aux)
        else:
            res = run_inner(meta, task.support, k_in, first_order=first_order)
            loss, aux = loss_fn(res.params, task.query, k_q)
            final = loss
        return loss, {"loss": loss, "outer/query_loss": final, **aux_metrics(aux),
                      "inner/support_loss_start": res.support_losses[0],
                      "inner/support_loss_before_last_step": res.support_losses[-1]}

    def task_grad(meta, task, key, outer_step, phase):
        fo = first_order or phase == "first_order"
        grads, metrics = jax.grad(meta_loss, has_aux=True)(meta, task, key, outer_step, fo)
        return grads, metrics

    def phase(step: int):
        return "first_order" if step < first_order_steps else None

    return Algorithm(name, init, task_grad, run_inner, phase)
