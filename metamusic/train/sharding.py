"""Data parallelism over the meta-batch's task axis: one call turns a loop's step and sampler into sharded ones.

Every loop (MAML family, relation networks, meta-GAN) hands `train.loop.run` a
`step_fn(state, batch, key, phase)` and a `sample_fn(step)`. `distribute` wraps
both: each sampled batch is split along its leading (task) axis over a 1-D
`Mesh` of devices named "tasks" (`NamedSharding(mesh, P("tasks"))`); the state
and the step's key are replicated (`P()`), and the step is re-jitted with
replicated outputs. Inside, the algorithms `vmap` over tasks, so XLA partitions
the per-task work and the mean over tasks becomes one all-reduce of the
gradients; nothing in `metamusic.meta` changes.

Several hosts: call `jax.distributed.initialize(...)` first (every process runs
the same program). `jax.devices()` then lists every process's devices, the mesh
spans them, every process samples the same full meta-batch (episodes are a
function of (seed, step)) and contributes the shards its own devices hold.

Configured by `cfg.sharding.devices` and `cfg.sharding.cpu_devices` (`metamusic.devices`, which also
places evaluation's episodes); the meta-batch must divide evenly.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from metamusic.devices import AXIS, put, make_mesh, mesh_from_config, replicate, shard_tasks, split_cpu  # noqa: F401


def distribute(step_fn: Callable, sample_fn: Callable, state, mesh: Optional[Mesh]):
    """(step_fn, sample_fn, state) that run data-parallel over `mesh`; unchanged when mesh is None.

    step_fn: (state, batch, key, phase) -> (state, metrics), as `train.loop.run` calls it.
    The returned step donates its state like `meta.outer.make_outer_step` does.
    """
    if mesh is None:
        return step_fn, sample_fn, state
    repl = NamedSharding(mesh, P())
    jitted = {}

    def step(state, batch, key, phase=None):
        if phase not in jitted:  # one compile per static phase, as the unsharded step
            fn = functools.partial(lambda s, b, k, ph: step_fn(s, b, k, ph), ph=phase)
            jitted[phase] = jax.jit(fn, out_shardings=repl, donate_argnums=(0,))
        return jitted[phase](state, batch, put(key, repl))

    return step, (lambda i: shard_tasks(sample_fn(i), mesh)), replicate(state, mesh)
