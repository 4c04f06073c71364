"""Amortized conditioning: adapting to a task is one forward pass of a support-set encoder, no inner loop.

Like CAVIA, the model carries a context that conditions it; unlike CAVIA, the context
is not found by gradient steps on the support set but predicted from it by an encoder
trained episodically with the model (the encoder reads the K support examples, the
model conditioned on its output is scored on the query; Garnelo et al.'s neural
processes and Requeima et al.'s CNAPs are this idea). Generation in a new style is
then one encoder call. Model-agnostic: the experiment supplies the encoder's init and
`condition(encoder_params, params, support) -> params conditioned on the support`.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from metamusic.errors import MetamusicError
from metamusic.meta.algorithm import Algorithm, aux_metrics
from metamusic.meta.inner import InnerResult


def make(name: str, loss_fn: Callable, inner=None, *, encoder_init: Callable | None = None,
         condition: Callable | None = None, **_) -> Algorithm:
    """The amortized algorithm. meta = {"params": model params, "encoder": support-encoder params}."""
    if encoder_init is None or condition is None:
        raise MetamusicError("amortized needs encoder_init and condition from its experiment (a model with a "
                             "context, e.g. model.context_dim > 0)")

    def init(params):
        return {"params": params, "encoder": encoder_init()}

    def task_grad(meta, task, key, outer_step, phase):
        def loss(m):
            return loss_fn(condition(m["encoder"], m["params"], task.support), task.query, key)

        (value, aux), grads = jax.value_and_grad(loss, has_aux=True)(meta)
        return grads, {"loss": value, "outer/query_loss": value, **aux_metrics(aux)}

    def adapt(meta, support, key, query=None, steps=None):
        """`steps` only shapes the evaluation curve: entry 0 is the unconditioned model, every later
        entry the conditioned one (there is nothing to iterate). steps=0 leaves the model unconditioned."""
        steps = 1 if steps is None else steps
        params = condition(meta["encoder"], meta["params"], support) if steps > 0 else meta["params"]
        if query is None:
            return InnerResult(params, jnp.zeros((0,)), None, None)
        q0, aux0 = loss_fn(meta["params"], query, key)
        if steps == 0:
            return InnerResult(params, jnp.zeros((0,)), q0[None], jax.tree.map(lambda a: a[None], aux0))
        q1, aux1 = loss_fn(params, query, key)
        curve = lambda a, b: jnp.concatenate([a[None], jnp.broadcast_to(b, (steps,) + jnp.shape(b))])
        return InnerResult(params, jnp.zeros((0,)), curve(q0, q1), jax.tree.map(curve, aux0, aux1))

    return Algorithm(name, init, task_grad, adapt)
