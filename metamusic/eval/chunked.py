"""Evaluation over many episodes in fixed-size chunks: one compiled call per chunk shape, bounded memory."""

from __future__ import annotations

from typing import Optional

import jax
import numpy as np

from metamusic import devices, progress


def map_chunks(fn, batch, chunk: int):
    """fn(part, start) over slices of `batch` (a NamedTuple of numpy arrays with a leading episode axis),
    outputs (pytrees of arrays) concatenated along that axis as numpy."""
    n = len(batch[0])
    outs = []
    for a in range(0, n, chunk):
        part = type(batch)(*(x[a: a + chunk] for x in batch))
        outs.append(jax.tree.map(np.asarray, fn(part, a)))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)


def adapt_curves(adapt, meta, tasks, steps: int, chunk: int, seed: int, to_device, mesh=None,
                 compiled: Optional[dict] = None):
    """Per-episode query loss and query aux after 0..steps adaptation steps: leaves [episodes, steps + 1].

    adapt(meta, support, key, query=, steps=) is an `Algorithm.adapt`; episode i of a
    chunk starting at a gets key split(fold_in(PRNGKey(seed), a))[i].
    mesh: split each chunk's episodes over its devices (`devices.mesh_from_config`), as training splits
    its tasks: on the CPU each device runs its share on its own core. Every episode keeps its data and
    key, so only the float summation order may change. Each chunk is reported to the open progress phase
    as `progress.curve_units` (its episodes times steps + 1).
    compiled: a dict the caller keeps across calls with the same `adapt` and steps (e.g. the candidates of
    a tuning, their lr inside `meta`), so they share one compiled call instead of compiling each.
    """
    def curves(meta, t, keys):
        res = jax.vmap(lambda tt, k: adapt(meta, tt.support, k, query=tt.query, steps=steps))(t, keys)
        return res.query_losses, res.query_aux

    compiled = {} if compiled is None else compiled
    run = compiled.setdefault((adapt, steps), jax.jit(curves))

    placed = {}

    def one(part, a):
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), a), len(part[0]))
        if mesh is None:
            out = jax.tree.map(np.asarray, run(meta, to_device(part), keys))
        else:
            if "meta" not in placed:  # the params once, on every device
                placed["meta"] = devices.replicate(meta, mesh)
            (part, keys), n = devices.shard_episodes((part, keys), mesh)
            out = jax.tree.map(lambda x: np.asarray(x)[:n], run(placed["meta"], to_device(part), keys))
        progress.advance(progress.curve_units(len(out[0]), steps))
        return out

    return map_chunks(one, tasks, chunk)
