"""The transfer-learning baselines every meta-learner is measured against, in one place.

  joint      one model trained on all meta-train tasks' tunes (support and query
             together), no inner loop: "doing nothing" at test time;
  finetune   the joint model fine-tuned by SGD on a new style's support tunes, its
             lr and number of steps chosen on meta-val (never meta-test), and the
             same choice used by evaluation and generation (saved next to the
             joint model's checkpoints as finetune.json);
  scratch    a fresh model trained on the support tunes only, tuned the same way;
  oracle     the ceiling: the joint model fine-tuned (Adam) on the *whole support
             pool* of one style, stopped early on held-out support-pool tunes
             (never the query pool). Every method is read as the share of the
             joint -> oracle headroom it closes.
Config: the `baselines` block (joint_steps, joint_lr, joint_batch_factor,
finetune_lrs or finetune_scales, finetune_steps, scratch_lrs, scratch_steps,
tune_episodes, oracle_*). The joint model trains through the same loop as the
meta-learners (`meta.direct`); it is not in the algorithm registry.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Optional

import jax
import numpy as np

from metamusic import checkpoints, legacy, progress
from metamusic.meta import direct
from metamusic.meta.algorithm import Algorithm, InnerSpec, concat_batches

JOINT = "joint"
FINETUNE = "finetune"
SCRATCH = "scratch"
ORACLE = "oracle"
def run_dir(workdir: str, name: str) -> str:
    """workdir/<name>; a method whose folder was renamed since is found in its old folder (`legacy`)."""
    path = os.path.join(workdir, name)
    if name in legacy.RENAMED_DIRS and not os.path.isdir(path):
        old = os.path.join(workdir, legacy.RENAMED_DIRS[name])
        if os.path.isdir(old):
            return old
    return path


def is_joint(name: str) -> bool:
    return name == JOINT


def joint_algorithm(loss_fn: Callable, inner: InnerSpec = InnerSpec(steps=0)) -> Algorithm:
    """Joint training: the loss on a task's support and query tunes together, no inner loop.

    `adapt` is SGD with `inner` (0 steps: the model as trained); fine-tuning is this
    algorithm made with the chosen lr and steps (`finetune_algorithm`).
    """
    return direct.make(JOINT, loss_fn, inner, batch_of=lambda task: concat_batches(task.support, task.query))


def finetune_algorithm(loss_fn: Callable, lr, steps: int, remat: bool = False) -> Algorithm:
    return joint_algorithm(loss_fn, InnerSpec(steps=steps, lr=lr, remat=remat))


def then_finetune(first: Algorithm, loss_fn: Callable, lr, steps: int, remat: bool = False,
                  first_steps: Optional[int] = None) -> Algorithm:
    """`first`'s adaptation (`first_steps` inner steps; None: its trained count), then `steps` SGD steps
    at `lr` on every weight of the adapted model, on the same support: a row "<method>+finetune" of the
    evaluation. Its query curve starts at the adapted model (entry 0), not at the unadapted one.
    Evaluation and generation only: nothing trains it (meta-training the combination is left to the
    MAML family)."""
    ft = finetune_algorithm(loss_fn, lr, steps, remat)

    def adapt(meta, support, key, query=None, steps=None):
        k_first, k_ft = jax.random.split(key)
        params = first.adapt(meta, support, k_first, steps=first_steps).params
        return ft.adapt({"params": params}, support, k_ft, query=query, steps=steps)

    return first._replace(name=f"{first.name}+{FINETUNE}", adapt=adapt)


def joint_steps(cfg) -> int:
    return cfg.baselines.joint_steps


@dataclasses.dataclass(frozen=True)
class Tuning:
    """How a family tunes fine-tuning on meta-val.

    candidates: the values tried (lrs, or scales of the inner lrs), in order;
    lr_of: candidate -> the lr (scalar or pytree) the SGD uses;
    max_steps: the most SGD steps; with choose_steps the best count in 1..max_steps is
      chosen too, else max_steps is used;
    curve: (meta, lr, steps) -> mean meta-val score after 0..steps steps (lower is better).
    """

    candidates: tuple
    lr_of: Callable
    max_steps: int
    choose_steps: bool
    curve: Callable
    # what else the choice depends on, e.g. the inner steps of the adaptation before fine-tuning; part of
    # the saved choice's key, so a change re-tunes instead of reusing a stale choice
    depends_on: tuple = ()
    # the work of choosing, in progress units (`progress.curve_units` summed over the candidates' curves):
    # a choice read from disk tells the open progress phase that this work will not be done
    units: int = 0


@dataclasses.dataclass(frozen=True)
class Choice:
    candidate: float
    lr: object
    steps: int
    scores: dict  # candidate -> score per step (non-finite as inf)

    def summary(self) -> dict:
        return {"lr": self.candidate, "steps": self.steps, "val_score_per_step": self.scores}


def choose(tuning: Tuning, meta) -> Choice:
    """The (candidate, steps) with the lowest meta-val score; if none is finite, the smallest candidate."""
    scores, best = {}, None
    for c in tuning.candidates:
        curve = np.asarray(tuning.curve(meta, tuning.lr_of(c), tuning.max_steps), np.float64)
        curve = np.where(np.isfinite(curve), curve, np.inf)
        scores[str(c)] = [round(float(x), 4) for x in curve]
        k = 1 + int(np.argmin(curve[1:])) if tuning.choose_steps else tuning.max_steps
        if np.isfinite(curve[k]) and (best is None or curve[k] < best[0]):
            best = (float(curve[k]), c, k)
    if best is None:
        c = min(tuning.candidates)
        best = (np.inf, c, tuning.max_steps)
    return Choice(float(best[1]), tuning.lr_of(best[1]), best[2], scores)


def finetune_choice(workdir: str, tuning: Tuning, meta, tag: str = FINETUNE, method: str = JOINT) -> Choice:
    """The fine-tuning choice for the trained baseline `method` (the joint model unless named) in
    `workdir`: read from <method>/<tag>.json when it was made for that method's latest checkpoint, else
    chosen on meta-val now and saved."""
    folder = run_dir(workdir, method)
    path = os.path.join(folder, f"{tag}.json")
    step = _latest_step(folder)
    if os.path.exists(path):
        try:
            saved = json.load(open(path))
            if saved.get("checkpoint_step") == step and saved.get("key") == _key(tuning):
                c = saved["choice"]
                progress.skip(tuning.units)
                return Choice(c["lr"], tuning.lr_of(c["lr"]), c["steps"], c["val_score_per_step"])
        except (OSError, ValueError, KeyError):
            pass  # unreadable or from other settings: choose again
    choice = choose(tuning, meta)
    with open(path + ".tmp", "w") as f:
        json.dump({"checkpoint_step": step, "key": _key(tuning),
                   "choice": choice.summary()}, f, indent=1)
    os.replace(path + ".tmp", path)
    return choice


def _key(tuning: Tuning) -> list:
    key = [list(map(float, tuning.candidates)), tuning.max_steps, tuning.choose_steps]
    return key + [list(tuning.depends_on)] if tuning.depends_on else key


def _latest_step(folder: str) -> Optional[int]:
    return checkpoints.latest_step(folder)
