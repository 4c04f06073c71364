"""The one training loop: every algorithm (MAML family, relation nets, meta-GAN) runs through it.

It owns what every run needs and no algorithm should copy: resume from the
latest orbax checkpoint, per-step PRNG keys and episode draws derived from
(seed, step) so a resumed run draws exactly what an uninterrupted one would,
JSON-lines and TensorBoard metrics, a tqdm progress bar with ETA, periodic
evaluation hooks, and a stop on repeated non-finite steps.

What varies is passed in: `step_fn(state, batch, key, phase) -> (state, metrics)`,
`sample_fn(step) -> batch`, `phase_fn(step)`, and `eval_fn(state, step) -> metrics`.
`state` is any pytree with an integer `step` leaf (e.g. `meta.outer.MetaState`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from typing import Callable, Optional

import jax
import numpy as np

from metamusic.errors import MetamusicError
from metamusic import checkpoints as ckpt_lib

log = logging.getLogger("metamusic.train")


@dataclasses.dataclass
class LoopConfig:
    total_steps: int
    seed: int = 0
    log_every: int = 50
    eval_every: int = 0  # 0: only at the end
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    max_bad_streak: int = 20  # consecutive non-finite steps before the run stops
    progress: bool = True

    @classmethod
    def from_config(cls, cfg, total_steps: int) -> "LoopConfig":
        """The loop fields every run config carries (seed, log/eval/checkpoint cadence, ...)."""
        return cls(total_steps=total_steps, seed=cfg.seed, log_every=cfg.log_every,
                   eval_every=cfg.get("eval_every", 0), checkpoint_every=cfg.checkpoint_every,
                   progress=cfg.progress, max_bad_streak=cfg.get("max_bad_streak", 20))


class MetricWriter:
    """metrics.jsonl always; TensorBoard event files when tensorboardX is installed.

    In a multi-process run only process 0 writes (every process computes the same metrics: they
    are means over the whole, replicated meta-batch); the others get a writer that drops rows.
    """

    def __init__(self, workdir: str, resume_step: int):
        self.enabled = jax.process_index() == 0
        self.f, self.tb = None, None
        if not self.enabled:
            return
        self.path = os.path.join(workdir, "metrics.jsonl")
        _truncate_after(self.path, resume_step)  # steps after the checkpoint are replayed
        self.f = open(self.path, "a")
        try:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(os.path.join(workdir, "tb"))
        except ImportError:  # pragma: no cover - tensorboardX is a declared dependency
            self.tb = None

    def write(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        row = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        self.f.write(json.dumps(row) + "\n")
        self.f.flush()
        if self.tb:
            for k, v in metrics.items():
                self.tb.add_scalar(k, float(v), int(step))

    def close(self) -> None:
        if self.f:
            self.f.close()
        if self.tb:
            self.tb.close()


def _truncate_after(path: str, step: int) -> None:
    """Keeps the rows up to `step` (the checkpoint resumed from); a torn or unparsable line (a crash
    mid-write) is dropped with one warning, not a JSONDecodeError."""
    if not os.path.exists(path):
        return
    rows, torn = [], 0
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                torn += 1
                continue
            if row.get("step", 0) <= step:
                rows.append(json.dumps(row) + "\n")
    if torn:
        log.warning("%s: dropped %d unreadable line(s) (a run stopped mid-write)", path, torn)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(rows)
    os.replace(tmp, path)


def run(workdir: str, state, step_fn: Callable, sample_fn: Callable, cfg: LoopConfig, *,
        phase_fn: Callable[[int], object] = lambda step: None,
        eval_fn: Optional[Callable] = None, name: str = "train", stats: Optional[dict] = None,
        optional: Optional[Callable[[tuple], bool]] = None):
    """Trains `state` to `cfg.total_steps`, resuming from `workdir` if it holds a checkpoint.

    Returns the final state. Raises MetamusicError after `max_bad_streak`
    consecutive non-finite steps (skipped steps never change the parameters). `stats`, when given,
    receives "start": the step it resumed from (after any fallback past a damaged checkpoint). `optional`: the
    arrays a checkpoint may lack or hold beyond `state` (`checkpoints.restore_latest`).
    """
    os.makedirs(workdir, exist_ok=True)
    mgr = ckpt_lib.manager(workdir, cfg.checkpoint_every, cfg.keep_checkpoints)
    state = ckpt_lib.restore_latest(mgr, state, set_aside=True, optional=optional)
    start = int(state.step)
    if stats is not None:
        stats["start"] = start
    if start:
        log.info("resumed %s from step %d in %s", name, start, workdir)
    writer = MetricWriter(workdir, start)
    base_key = jax.random.PRNGKey(cfg.seed)
    from tqdm import tqdm

    bar = tqdm(total=cfg.total_steps, initial=start, desc=name, unit="step",
               disable=not cfg.progress or jax.process_index() != 0,
               dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 30)
    pending, t_last, n_last = [], time.perf_counter(), start
    try:
        for step in range(start, cfg.total_steps):
            batch = sample_fn(step)
            key = jax.random.fold_in(base_key, step)
            state, metrics = step_fn(state, batch, key, phase_fn(step))
            pending.append(metrics)
            streak = int(state.bad_streak)
            if streak == 1:
                log.warning("%s step %d: non-finite loss or gradients; update skipped", name, step)
            if streak > cfg.max_bad_streak:
                raise MetamusicError(
                    f"{cfg.max_bad_streak + 1} consecutive non-finite steps at step {step}: the last good "
                    f"parameters are kept in {workdir}; lower the learning rates or check the data")
            done = step + 1
            bar.update(1)
            if done % cfg.log_every == 0 or done == cfg.total_steps:
                host = jax.device_get(pending)
                avg = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
                now = time.perf_counter()
                avg["train/steps_per_s"] = (done - n_last) / (now - t_last)
                avg["train/window_steps"] = len(host)  # < log_every in the first row after a resume
                t_last, n_last, pending = now, done, []
                writer.write(done, avg)
                bar.set_postfix(loss=f"{avg['loss']:.3f}")
            if eval_fn and cfg.eval_every and done % cfg.eval_every == 0 and done != cfg.total_steps:
                writer.write(done, eval_fn(state, done))
            ckpt_lib.save(mgr, done, state, force=done == cfg.total_steps)
        if eval_fn and start < cfg.total_steps:
            writer.write(cfg.total_steps, eval_fn(state, cfg.total_steps))
    finally:
        bar.close()
        writer.close()
        mgr.wait_until_finished()
        mgr.close()
    return state
