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

Configured by `cfg.sharding.devices`: 0 = off (the single default device),
N = the first N devices, -1 = all devices. The meta-batch must divide evenly. On the CPU,
`cfg.sharding.cpu_devices` = N > 1 splits the machine into N XLA devices (`split_cpu`, which the
command line calls before JAX starts) and shards the tasks over them when `devices` is 0.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from metamusic.errors import MetamusicError

AXIS = "tasks"


def make_mesh(devices: int) -> Optional[Mesh]:
    """A 1-D mesh over the first `devices` devices (-1: all); None when `devices` is 0 (sharding off)."""
    if devices == 0:
        return None
    avail = jax.devices()
    n = len(avail) if devices == -1 else devices
    if n < 1 or n > len(avail):
        raise MetamusicError(f"sharding.devices={devices}, but {len(avail)} {avail[0].platform} device(s) are "
                             f"visible; use 0 (off), -1 (all) or a number up to {len(avail)}")
    return Mesh(np.array(avail[:n]), (AXIS,))


def mesh_from_config(cfg) -> Optional[Mesh]:
    """`cfg.sharding.devices` as a mesh (configs without a `sharding` block: off). With devices 0 and
    `sharding.cpu_devices` N > 1, JAX on the CPU, and N CPU devices visible (`split_cpu` made them
    before JAX started), a mesh over those N."""
    sh = cfg.get("sharding") if hasattr(cfg, "get") else None
    devices = int(sh.get("devices", 0)) if sh is not None else 0
    cpu = int(sh.get("cpu_devices", 0)) if sh is not None else 0
    if devices == 0 and cpu > 1 and jax.default_backend() == "cpu" and len(jax.devices()) >= cpu:
        devices = cpu
    return make_mesh(devices)


def split_cpu(cfg) -> None:
    """Asks XLA for `sharding.cpu_devices` CPU devices (XLA_FLAGS), if the config sets more than one and
    XLA_FLAGS does not already choose a count. Call before JAX first touches a device (the flag is read
    when the CPU backend starts); it changes only the CPU backend, so on an accelerator it is inert.

    Why: an XLA:CPU device runs one computation on one thread, and the MAML family's small
    per-time-step matmuls leave the other cores idle. Several CPU devices, each meta-training its
    share of the tasks on its own thread, use them (benchmarks/meta_step_bench.py with --host-devices=N
    against =1; docs/design_notes.md#cpu-devices)."""
    import os

    sh = cfg.get("sharding") if hasattr(cfg, "get") else None
    n = int(sh.get("cpu_devices", 0)) if sh is not None else 0
    flags = os.environ.get("XLA_FLAGS", "")
    if n > 1 and "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = (flags + f" --xla_force_host_platform_device_count={n}").strip()


def _put(x, sharding: NamedSharding):
    """A global array with this sharding from a value every process holds in full."""
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def replicate(tree, mesh: Mesh):
    return jax.tree.map(lambda x: _put(x, NamedSharding(mesh, P())), tree)


def shard_tasks(tree, mesh: Mesh):
    """Every leaf split along its leading (task) axis over the mesh."""
    n = mesh.devices.size

    def put(x):
        if np.shape(x)[0] % n:
            raise MetamusicError(f"a meta-batch of {np.shape(x)[0]} tasks does not split over {n} devices; "
                                 f"make the batch a multiple of {n} or change sharding.devices")
        return _put(x, NamedSharding(mesh, P(AXIS)))

    return jax.tree.map(put, tree)


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
        return jitted[phase](state, batch, _put(key, repl))

    return step, (lambda i: shard_tasks(sample_fn(i), mesh)), replicate(state, mesh)
