"""orbax checkpoints of a whole training state (step, params, optimizer state, counters).

PRNG keys and episode draws are functions of (seed, step), so the step is all the
key and sampler state a resume needs: a resumed run continues bit-for-bit.

A checkpoint can be damaged after it was written (a disk that filled, a file
deleted or truncated by hand or by a sync tool). Restoring walks back from the
newest step to the newest one that restores, with one warning line per damaged
step; training also moves each damaged step aside (to `damaged_checkpoints/`
beside `checkpoints/`, never deleted) so the step can be saved again. Reading a
workdir never creates folders in it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from typing import Callable, Optional

import jax
import orbax.checkpoint as ocp

from metamusic.errors import MetamusicError

log = logging.getLogger("metamusic.checkpoints")


def manager(workdir: str, every: int, keep: int, create: bool = True) -> ocp.CheckpointManager:
    opts = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=max(1, every), create=create,
                                        enable_async_checkpointing=False)
    with _quiet():  # (orbax warns through absl for a step folder without metadata; restoring reports damage)
        return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints")), options=opts)


def restore_latest(mgr: ocp.CheckpointManager, template, *, set_aside: bool = False,
                   optional: Optional[Callable[[tuple], bool]] = None):
    """The newest checkpoint that restores, into `template`'s structure; `template` if there is none.

    A newer checkpoint that fails to restore is named in one warning line and skipped (moved to
    damaged_checkpoints/ when `set_aside`, as training does before it saves that step again).
    Raises MetamusicError if there are checkpoints and none restores.

    optional: a predicate on an array's path (`path_key`) naming the parts of a model that only some methods
    build (a classification run builds R2D2's ridge scale only when an R2D2 head is trained). A checkpoint
    that differs from `template` only in such arrays restores by path: the ones it lacks come from
    `template` (the method it holds never read them), the ones `template` lacks are left out.
    """
    steps = sorted(mgr.all_steps(), reverse=True)
    moved_any = False
    for step in steps:
        where = os.path.join(str(mgr.directory), str(step))
        if optional is None:  # an intact step of another config is refused before orbax tries to read it
            with _quiet():
                _raise_if_other_config(where, template)
        try:
            with _quiet():
                state = _restore_by_path(mgr, step, template, optional) if optional is not None else None
                if state is None:
                    state = restore_step(mgr, step, template)
        except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many types for a damaged step
            with _quiet():
                _raise_if_other_config(where, template)
            moved = _set_aside(where) if set_aside and jax.process_index() == 0 else None
            if set_aside:
                _sync(f"set_aside_{step}")  # the other processes wait until process 0 has moved it
            log.warning("checkpoint %s does not restore (%s: %s)%s; trying an earlier one", where,
                        type(e).__name__, _first_line(e), f"; moved to {moved}" if moved else "")
            moved_any |= set_aside
            continue
        break
    else:
        state = None
    if moved_any:
        with _quiet():
            mgr.reload()  # forget the moved steps, so the next save of that step number is not refused
    if state is not None:
        return state
    if steps:
        raise MetamusicError(f"no checkpoint in {mgr.directory} restores (steps {sorted(steps)}); "
                             "move the folder away to train from scratch")
    return template


def _closed_loop(exc) -> bool:
    """The error TensorStore's reader threads raise when they report to an event loop orbax has closed
    after a failed restore: noise after our one warning line, never a fault of the run."""
    return isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"


_hooks_installed = False


def _drop_closed_loop_errors() -> None:
    """Installs (once) excepthook and unraisablehook filters that drop `_closed_loop` errors only (they
    can arrive from other threads after a restore attempt has returned) and pass every other error on."""
    global _hooks_installed
    if _hooks_installed:
        return
    prev_except, prev_unraisable = sys.excepthook, sys.unraisablehook

    def excepthook(kind, value, tb):
        if not _closed_loop(value):
            prev_except(kind, value, tb)

    def unraisablehook(unraisable):
        if not _closed_loop(unraisable.exc_value):
            prev_unraisable(unraisable)

    sys.excepthook, sys.unraisablehook = excepthook, unraisablehook
    logging.getLogger("asyncio").addFilter(_unretrieved_read_errors)
    _hooks_installed = True


def _unretrieved_read_errors(record) -> bool:
    """asyncio's "exception was never retrieved" reports of a damaged checkpoint's reads (TensorStore's
    DATA_LOSS and the like), logged when orbax's abandoned tasks are collected: our one warning line has
    said it. Every other asyncio record passes."""
    exc = record.exc_info[1] if record.exc_info else None
    text = f"{type(exc).__name__}: {exc}" if exc is not None else ""
    damaged = exc is not None and (_closed_loop(exc) or "DATA_LOSS" in text or "tensorstore" in text.lower())
    return not ("was never retrieved" in record.getMessage() and damaged)


@contextlib.contextmanager
def _quiet():
    """While a checkpoint is tried: a damaged one is reported by our one warning line, so orbax's own
    warnings (through absl), the tracebacks of its abandoned reader coroutines (printed by Python as
    "Exception ignored in ...") and its closed-loop errors are kept off the console."""
    import gc

    from absl import logging as absl_logging

    _drop_closed_loop_errors()
    level = absl_logging.get_verbosity()
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        gc.collect()  # the abandoned coroutines are collected (and their errors dropped) here
        sys.unraisablehook = hook
        absl_logging.set_verbosity(level)


def path_key(path) -> tuple:
    """A tree path as a tuple of strings, the same for a state and for its restore without a template (dict
    keys, attribute names and sequence indices alike)."""
    return tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def _restore_by_path(mgr: ocp.CheckpointManager, step: int, template, optional: Callable[[tuple], bool]):
    """`template`'s structure from checkpoint `step` when the two differ only in arrays `optional` names (see
    `restore_latest`); None when they do not differ, or differ in any other array (another config, or
    damage: the plain restore then reports it)."""
    try:
        md = ocp.StandardCheckpointer().metadata(os.path.join(str(mgr.directory), str(step), "default"))
        tree = getattr(getattr(md, "item_metadata", md), "tree", None)
    except Exception:  # noqa: BLE001 - unreadable metadata is damage, for the plain restore to report
        return None
    if tree is None:
        return None
    shape = lambda x: (tuple(int(d) for d in x.shape), str(x.dtype))
    saved = {path_key(p): shape(x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}
    wanted = {path_key(p): shape(x) for p, x in jax.tree_util.tree_flatten_with_path(template)[0]}
    differ = set(saved) ^ set(wanted)
    if not differ or not all(optional(k) for k in differ):
        return None
    if any(saved[k] != wanted[k] for k in set(saved) & set(wanted)):
        return None
    raw = mgr.restore(step, args=ocp.args.StandardRestore(None))
    got = {path_key(p): x for p, x in jax.tree_util.tree_flatten_with_path(raw)[0]}

    def pick(p, x):  # each restored array placed as the template's (a training state may be sharded)
        k = path_key(p)
        if k not in got:
            return x
        return jax.device_put(got[k], x.sharding) if isinstance(x, jax.Array) else got[k]

    return jax.tree_util.tree_map_with_path(pick, template)


def restore_step(mgr: ocp.CheckpointManager, step: int, template):
    """The checkpoint of one `step` restored into `template`'s structure."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    return mgr.restore(step, args=ocp.args.StandardRestore(abstract))


def save(mgr: ocp.CheckpointManager, step: int, state, force: bool = False) -> None:
    """Saves `state` as `step` (when the manager's interval or `force` says so), then deletes the steps past
    `keep`. Ctrl-C or SIGTERM during the save takes effect once it has returned: an interrupt in the middle
    would leave a half-written step, or an older step half-deleted (its metadata gone, its arrays still
    there). A second signal during the save acts at once."""
    if not force and not mgr.should_save(step):  # (most steps: nothing to hold signals for)
        return
    with signals_deferred():
        mgr.save(step, args=ocp.args.StandardSave(state), force=force)


@contextlib.contextmanager
def signals_deferred(signums=None):
    """Holds SIGINT and SIGTERM (or `signums`) until the block ends, then delivers the first one held to
    the handlers that were there before (Ctrl-C's KeyboardInterrupt, the command line's Terminated).
    A second signal while one is held is delivered at once. Outside the main thread (where Python cannot
    set handlers) the block runs unchanged."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = (signal.SIGINT, signal.SIGTERM) if signums is None else tuple(signums)
    previous = {s: signal.getsignal(s) for s in signums}
    previous = {s: h for s, h in previous.items() if h is not None}  # (None: a handler set outside Python)
    held = []

    def restore():
        for s, h in previous.items():
            signal.signal(s, h)

    def hold(signum, frame):
        if held:  # the user insists: stop now
            held.append(None)
            restore()
            signal.raise_signal(signum)
            return
        held.append(signum)

    for s in previous:
        signal.signal(s, hold)
    try:
        yield
    finally:
        restore()
        if len(held) == 1:
            signal.raise_signal(held[0])


def latest_step(workdir: str) -> Optional[int]:
    """The newest saved step in workdir/checkpoints (restorable or not), or None; creates nothing."""
    ck = os.path.join(workdir, "checkpoints")
    steps = [int(d) for d in os.listdir(ck) if d.isdigit()] if os.path.isdir(ck) else []
    return max(steps) if steps else None


def load(workdir: str, template, optional: Optional[Callable[[tuple], bool]] = None):
    """The newest state in `workdir` that restores (for eval and generation), or raises if there is none;
    `optional` as `restore_latest`'s."""
    if latest_step(workdir) is None:
        raise MetamusicError(f"no checkpoint in {workdir}/checkpoints; train first (--mode=train)")
    mgr = manager(workdir, 1, 1, create=False)
    try:
        return restore_latest(mgr, template, optional=optional)
    finally:
        mgr.close()


def _raise_if_other_config(step_dir: str, template) -> None:
    """Raises MetamusicError if the step's own metadata reads and its arrays differ from `template`'s:
    an intact checkpoint of another config (e.g. another model size), which must not be treated as
    damage and moved aside."""
    try:
        md = ocp.StandardCheckpointer().metadata(os.path.join(step_dir, "default"))
        tree = getattr(getattr(md, "item_metadata", md), "tree", None)
        saved = sorted(_shapes(tree)) if tree is not None else None
    except Exception:  # noqa: BLE001 - unreadable metadata is damage
        return
    if saved is None:
        return
    wanted = sorted(_shapes(template))
    if saved != wanted:
        diff = sorted(set(saved) ^ set(wanted))[:3]
        raise MetamusicError(f"checkpoint {step_dir} holds a state of another config ({len(saved)} arrays vs "
                             f"{len(wanted)} expected; shapes that differ: {diff}); resume with the config it "
                             "was trained with (its config.json) or use a new --workdir")


def _shapes(tree) -> list:
    return [(tuple(int(d) for d in x.shape), str(x.dtype)) for x in jax.tree.leaves(tree)]


def _set_aside(step_dir: str) -> Optional[str]:
    """Moves a damaged step folder to <workdir>/damaged_checkpoints/<step>[-N]; returns where."""
    dest_root = os.path.join(os.path.dirname(os.path.dirname(step_dir)), "damaged_checkpoints")
    os.makedirs(dest_root, exist_ok=True)
    dest, n = os.path.join(dest_root, os.path.basename(step_dir)), 1
    while os.path.exists(dest):
        dest, n = os.path.join(dest_root, f"{os.path.basename(step_dir)}-{n}"), n + 1
    try:
        shutil.move(step_dir, dest)
    except OSError:
        return None
    return dest


def _sync(name: str) -> None:
    """A barrier across the processes of a multi-host run; nothing in a single-process one."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    line = (text[0] if text else "").split(" See full TensorStore details")[0]  # (a dump of its internals)
    return line[:160]


def remove_partial(workdir: str) -> list:
    """Removes the temporary folders of checkpoint saves that an interrupt cut short (a resume would skip
    them anyway) under workdir/<method>/checkpoints; returns what was removed."""
    removed = []
    for method in sorted(os.listdir(workdir)):
        ck = os.path.join(workdir, method, "checkpoints")
        if not os.path.isdir(ck):
            continue
        for name in os.listdir(ck):
            if "orbax-checkpoint-tmp" in name:
                shutil.rmtree(os.path.join(ck, name), ignore_errors=True)
                removed.append(os.path.join(ck, name))
    return removed
