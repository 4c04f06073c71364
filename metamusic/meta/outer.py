"""The outer step: an algorithm's task gradient over the meta-batch (vmap, or lax.map), update with optax.

`make_outer_step` returns one jitted function with donated state. A step whose loss
or gradients are not finite leaves params and optimizer state unchanged and is
counted (`state.skipped`, `state.bad_streak`), so one bad batch never corrupts a run.
(`optax.apply_if_finite` does the skip for gradients only and keeps its counter inside
the optimizer state; here the loss is checked too and the loop reads the streak.)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from flax import struct

from metamusic.meta.algorithm import Algorithm


class MetaState(struct.PyTreeNode):
    step: jax.Array  # outer steps taken (skipped ones included)
    meta: object  # the algorithm's meta pytree
    opt_state: object
    skipped: jax.Array  # non-finite steps skipped so far
    bad_streak: jax.Array  # consecutive non-finite steps (the loop stops past a limit)


def init_state(algo: Algorithm, tx: optax.GradientTransformation, params) -> MetaState:
    meta = algo.init(params)
    zero = jnp.zeros((), jnp.int32)
    state = MetaState(zero, meta, tx.init(meta), zero, zero)
    # Every leaf its own buffer: the jitted step donates the state, and XLA refuses to
    # donate one buffer twice (optax and the counters share zeros otherwise).
    return jax.tree.map(jnp.copy, state)


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


TASK_MAPS = ("vmap", "map")  # the config also takes "auto" (meta.registry.task_map_for)


def task_grads(algo: Algorithm, meta, tasks, keys, step, phase=None, task_map: str = "vmap"):
    """Every task's (grads, metrics), stacked on a leading task axis.

    task_map "vmap" batches the tasks into every op; "map" runs them one after another
    (`lax.map`). Each task has its own adapted weights, so under vmap the LSTM's per-time-step
    matmul becomes a batched [tasks, K, H] x [tasks, H, 4H] dot, which XLA:CPU runs no faster per
    task than the unbatched one; one task at a time keeps the loops' working set small and ran
    faster on XLA:CPU (benchmarks/meta_step_bench.py --task-map; docs/design_notes.md#task-map).
    The same math either way; the float results may differ in the last bits (a batched dot sums
    in another order)."""
    grad_fn = functools.partial(algo.task_grad, phase=phase)
    if task_map == "vmap":
        return jax.vmap(grad_fn, in_axes=(None, 0, 0, None))(meta, tasks, keys, step)
    if task_map == "map":
        return jax.lax.map(lambda tk: grad_fn(meta, tk[0], tk[1], step), (tasks, keys))
    raise ValueError(f"task_map={task_map!r}; allowed: {', '.join(TASK_MAPS)}")


def mean_task_grads(algo: Algorithm, meta, tasks, keys, step, phase=None, task_map: str = "vmap", mesh=None):
    """The task-mean of (grads, metrics) over a meta-batch.

    mesh: a 1-D `jax.sharding.Mesh` whose axis splits the tasks (None: one device). Each device
    then runs its share of the tasks with `task_grads` inside `jax.shard_map` (one after another
    under "map") and one all-reduce sums them. XLA's automatic partitioning splits a vmapped
    batch but not a `lax.map` loop (left to it, "map" on two CPU devices ran no faster than on
    one), so "map" on several devices needs this explicit split (benchmarks/meta_step_bench.py
    with --host-devices=N against =1; docs/design_notes.md#cpu-devices)."""
    n = jax.tree.leaves(tasks)[0].shape[0]
    if mesh is None:
        out = task_grads(algo, meta, tasks, keys, step, phase, task_map)
        return jax.tree.map(lambda x: x.mean(0), out)
    from jax.sharding import PartitionSpec as P

    (axis,) = mesh.axis_names

    def shard(meta, tasks, keys, step):
        out = task_grads(algo, meta, tasks, keys, step, phase, task_map)
        return jax.tree.map(lambda x: jax.lax.psum(x.sum(0), axis) / n, out)

    # check_vma off: the LSTM's scan starts from zeros that are the same on every device and
    # carries per-device values; the result is checked against the one-device step in tests.
    return jax.shard_map(shard, mesh=mesh, in_specs=(P(), P(axis), P(axis), P()), out_specs=P(),
                         check_vma=False)(meta, tasks, keys, step)


def outer_step(algo: Algorithm, tx, state: MetaState, tasks, key, phase=None, task_map: str = "vmap", mesh=None):
    """One meta-update over a meta-batch of tasks (leading axis of every leaf of `tasks`).

    Returns (new_state, metrics): metrics are task means plus grad and param norms,
    `train/skipped` (1.0 if this step was skipped). mesh: see `mean_task_grads`.
    """
    n = jax.tree.leaves(tasks)[0].shape[0]
    keys = jax.random.split(key, n)
    grads, metrics = mean_task_grads(algo, state.meta, tasks, keys, state.step, phase, task_map, mesh)
    updates, opt_state = tx.update(grads, state.opt_state, state.meta)
    meta = optax.apply_updates(state.meta, updates)
    ok = _all_finite(grads) & jnp.isfinite(metrics["loss"])
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
    new = MetaState(step=state.step + 1, meta=keep(meta, state.meta), opt_state=keep(opt_state, state.opt_state),
                    skipped=state.skipped + (~ok).astype(jnp.int32),
                    bad_streak=jnp.where(ok, 0, state.bad_streak + 1))
    metrics = dict(metrics, **{"train/grad_norm": optax.tree.norm(grads), "train/param_norm": optax.tree.norm(new.meta),
                               "train/skipped": (~ok).astype(jnp.float32)})
    return new, metrics


def make_outer_step(algo: Algorithm, tx, task_map: str = "vmap", mesh=None):
    """jit(outer_step) with donated state; `phase` is static (at most one compile per phase).
    task_map: how the tasks of a meta-batch are run (`task_grads`); mesh: the devices that split
    them (`mean_task_grads`; the caller places the batch split over the mesh's axis)."""
    if task_map not in TASK_MAPS:
        raise ValueError(f"task_map={task_map!r}; allowed: {', '.join(TASK_MAPS)}")

    def step(state, tasks, key, phase=None):
        return outer_step(algo, tx, state, tasks, key, phase, task_map, mesh)

    return jax.jit(step, donate_argnums=(0,), static_argnames=("phase",))
