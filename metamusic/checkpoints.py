"""orbax checkpoints of a whole training state (step, params, optimizer state, counters).

PRNG keys and episode draws are functions of (seed, step), so the step is all the
key and sampler state a resume needs: a resumed run continues bit-for-bit.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp


def manager(workdir: str, every: int, keep: int) -> ocp.CheckpointManager:
    opts = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=max(1, every), create=True,
                                        enable_async_checkpointing=False)
    return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints")), options=opts)


def restore_latest(mgr: ocp.CheckpointManager, template):
    """The latest checkpoint restored into `template`'s structure, or `template` if none."""
    step = mgr.latest_step()
    return template if step is None else restore_step(mgr, step, template)


def restore_step(mgr: ocp.CheckpointManager, step: int, template):
    """The checkpoint of one `step` restored into `template`'s structure."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    return mgr.restore(step, args=ocp.args.StandardRestore(abstract))


def save(mgr: ocp.CheckpointManager, step: int, state, force: bool = False) -> None:
    mgr.save(step, args=ocp.args.StandardSave(state), force=force)


def load(workdir: str, template):
    """The latest state in `workdir` (for eval and generation), or raises if there is none."""
    from metamusic.errors import MetamusicError

    mgr = manager(workdir, 1, 1)
    try:
        if mgr.latest_step() is None:
            raise MetamusicError(f"no checkpoint in {workdir}/checkpoints; train first (--mode=train)")
        return restore_latest(mgr, template)
    finally:
        mgr.close()
