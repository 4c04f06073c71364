"""The inner loop: a few SGD steps on a task's support set, as one `lax.scan`.

Model-agnostic: everything here takes `loss_fn(params, batch, key) -> (loss, aux)`
and a params pytree. Learning rates are a pytree too, so one function covers
  * a scalar lr for every parameter (MAML, FOMAML, ANIL),
  * one lr per parameter element (Meta-SGD: leaves shaped like the params),
  * one lr per parameter tensor and step (MAML++: leaves shaped [steps]),
  * a schedule: a callable `steps -> pytree of [steps] lr vectors`, so the lrs of an
    adaptation of any length are set by its caller's rule (a meta-GAN's players each
    adapt on their own steps of the loop, `adversarial.player_schedule`).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
from metamusic.errors import MetamusicError

LossFn = Callable  # (params, batch, key) -> (scalar loss, aux dict)


class InnerResult(NamedTuple):
    params: object  # adapted params
    support_losses: jax.Array  # [steps] support loss before each step
    query_losses: Optional[jax.Array]  # [steps + 1] query loss before/after each step, if a query was given
    query_aux: Optional[dict]  # aux of the query loss, leaves [steps + 1]


def adapt(loss_fn: LossFn, params, support, key, *, steps: int, lrs, mask=None, first_order: bool = False,
          per_step_lrs: bool = False, query=None, remat: bool = False, unroll: bool = True) -> InnerResult:
    """`steps` SGD steps on `support`, scanned.

    Args:
      lrs: a float, or a pytree matching `params` (Meta-SGD), or, with per_step_lrs,
        a pytree matching `params` whose leaves are [steps] vectors (MAML++), or a
        schedule `steps -> such a per-step pytree` (implies per_step_lrs).
      mask: optional pytree of bools/floats matching `params`; 0 freezes a leaf
        (ANIL adapts only the head).
      first_order: stop gradients through the inner gradients (FOMAML): the outer
        gradient then treats them as constants, skipping second derivatives.
      query: if given, its loss is recorded before and after every step (evaluation,
        and MAML++'s multi-step loss).
      remat: rematerialize each inner step in the backward pass (`jax.checkpoint`):
        memory flat in the number of steps, for a second forward per step.
      unroll: unroll the scan over the (few) inner steps. On XLA:CPU a while loop whose
        body holds the model's own time scan ran several times slower than the same steps
        unrolled (the meta-GAN's inner loop; docs/design_notes.md#unrolled-inner-loop);
        unrolling costs compile time linear in `steps`.
    """
    if steps < 0:
        raise MetamusicError(f"inner steps={steps} must be >= 0")
    if callable(lrs):
        lrs, per_step_lrs = lrs(steps), True
    lr_tree = _broadcast_lrs(lrs, params)
    mask_tree = jax.tree.map(lambda p: 1.0, params) if mask is None else mask
    keys = jax.random.split(key, steps + 1)

    def qloss(p, k):
        return loss_fn(p, query, k)

    def one_step(p, inp):
        i, k = inp
        (loss, _), g = jax.value_and_grad(loss_fn, has_aux=True)(p, support, k)
        if first_order:
            g = jax.lax.stop_gradient(g)
        lr_i = jax.tree.map(lambda lr: lr[i] if per_step_lrs else lr, lr_tree)
        new = jax.tree.map(lambda w, gw, lr, m: w - m * lr * gw, p, g, lr_i, mask_tree)
        out = (loss,)
        if query is not None:
            out = out + qloss(new, jax.random.fold_in(k, 1))
        return new, out

    if steps == 0:
        if query is None:
            return InnerResult(params, jnp.zeros((0,)), None, None)
        q0, aux0 = qloss(params, jax.random.fold_in(keys[0], 1))
        return InnerResult(params, jnp.zeros((0,)), q0[None], jax.tree.map(lambda a: a[None], aux0))
    body = jax.checkpoint(one_step) if remat else one_step
    adapted, outs = jax.lax.scan(body, params, (jnp.arange(steps), keys[1:]), unroll=steps if unroll else 1)
    if query is None:
        return InnerResult(adapted, outs[0], None, None)
    q0, aux0 = qloss(params, jax.random.fold_in(keys[0], 1))
    q = jnp.concatenate([q0[None], outs[1]])
    aux = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), aux0, outs[2])
    return InnerResult(adapted, outs[0], q, aux)


def _broadcast_lrs(lrs, params):
    """A scalar lr becomes a pytree of scalars matching params."""
    if isinstance(lrs, (int, float)) or (hasattr(lrs, "ndim") and jnp.ndim(lrs) == 0):
        return jax.tree.map(lambda p: jnp.asarray(lrs, jnp.float32), params)
    return lrs


def init_lrs(params, lr: float, kind: str, steps: int = 1):
    """Learnable inner lrs: 'per_param' (Meta-SGD) or 'per_step' (MAML++, one per tensor and step)."""
    if kind == "per_param":
        return jax.tree.map(lambda p: jnp.full(p.shape, lr, jnp.float32), params)
    if kind == "per_step":
        return jax.tree.map(lambda p: jnp.full((steps,), lr, jnp.float32), params)
    raise MetamusicError(f"lr kind={kind!r}; choose 'per_param' or 'per_step'")
