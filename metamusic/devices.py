"""Which devices a run uses and how arrays are placed on them: the 1-D mesh named "tasks" that training
(`train.sharding.distribute`) and evaluation (`eval.chunked`) split their episodes over.

Configured by `cfg.sharding.devices`: 0 = off (the single default device), N = the first N devices,
-1 = all devices. On the CPU, `cfg.sharding.cpu_devices` = N > 1 splits the machine into N XLA devices
(`split_cpu`, which the command line calls before JAX starts) and the mesh spans them when `devices` is 0.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from typing import Optional

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


def put(x, sharding: NamedSharding):
    """A global array with this sharding from a value every process holds in full."""
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def replicate(tree, mesh: Mesh):
    return jax.tree.map(lambda x: put(x, NamedSharding(mesh, P())), tree)


def shard_tasks(tree, mesh: Mesh):
    """Every leaf split along its leading (task) axis over the mesh."""
    n = mesh.devices.size

    def one(x):
        if np.shape(x)[0] % n:
            raise MetamusicError(f"a meta-batch of {np.shape(x)[0]} tasks does not split over {n} devices; "
                                 f"make the batch a multiple of {n} or change sharding.devices")
        return put(x, NamedSharding(mesh, P(AXIS)))

    return jax.tree.map(one, tree)


def shard_episodes(tree, mesh: Mesh):
    """Every leaf split along its leading (episode) axis over the mesh, that axis first padded to a multiple
    of the mesh size with copies of the last episode (evaluation chunks need not divide evenly; drop the
    padded outputs). Returns (the sharded tree, the number of real episodes)."""
    n = int(np.shape(jax.tree.leaves(tree)[0])[0])
    size = -(-n // mesh.devices.size) * mesh.devices.size

    def pad(x):
        x = np.asarray(x)
        if size > n:
            x = np.concatenate([x, np.repeat(x[-1:], size - n, axis=0)])
        return put(x, NamedSharding(mesh, P(AXIS)))

    return jax.tree.map(pad, tree), n


_job = threading.local()  # the device of the job this thread runs (run_jobs), if any


def run_jobs(jobs: dict, mesh: Optional[Mesh]) -> dict:
    """{name: thunk} -> {name: result} for independent jobs (an evaluation's per-style oracle fits): at most
    one job per device of `mesh` at a time, each in a thread whose default device is its device, so on the
    CPU each runs on its own core. A job computes what it would alone (the same ops on the same shapes),
    so its results do not depend on the device. mesh None or one device, or a job that runs jobs: one
    after another, in order. A job's committed inputs (restored params) belong on its device: `here`."""
    devs = [] if mesh is None else list(mesh.devices.flat)
    if len(devs) < 2 or len(jobs) < 2 or getattr(_job, "device", None) is not None:
        return {name: fn() for name, fn in jobs.items()}
    free: queue.Queue = queue.Queue()
    for d in devs:
        free.put(d)

    def call(fn):
        d = free.get()
        _job.device = d
        try:
            with jax.default_device(d):
                return fn()
        finally:
            _job.device = None
            free.put(d)

    with concurrent.futures.ThreadPoolExecutor(len(devs)) as pool:
        futures = {name: pool.submit(call, fn) for name, fn in jobs.items()}
        return {name: f.result() for name, f in futures.items()}


def here(tree):
    """`tree` on the device of the job this thread runs (`run_jobs`); unchanged outside a job."""
    d = getattr(_job, "device", None)
    return tree if d is None else jax.device_put(tree, d)
