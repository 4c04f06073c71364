"""Experiment families: (config, corpus) -> a typed `Experiment` (see `base`).

  EXPERIMENTS     family name -> module with `validate(cfg)` and `build(cfg, corpus)`
  validate(cfg)   checks every field a family reads, once, before any corpus load
  build(cfg, corpus)
  run_config(workdir)  the config a run was trained with (workdir/config.json)
The config's `experiment` field names the family.
"""

from __future__ import annotations

import json
import os

from metamusic.errors import MetamusicError, check_choice
from metamusic.experiments import classify, gan, melody, sinusoid
from metamusic.experiments.base import Experiment, load_data, load_test_data, restore

EXPERIMENTS = {"melody": melody, "gan": gan, "classify": classify, "sinusoid": sinusoid}

# Config fields renamed when the families got one schema: old path -> new path.
RENAMED = {"task": "experiment", "batch": "meta.batch", "relation.methods": "meta.algorithm",
           "relation.aggregate": "model.aggregate", "eval.val_episodes": "eval.val_tasks",
           "meta.eval_steps": "eval.steps", "meta.eval_tasks": "eval.episodes",
           "eval.fidelity.scorer": "eval.scorer", "eval.fidelity.shots": "eval.fidelity_shots",
           "eval.fidelity.samples": "eval.samples", "eval.fidelity.distractors": "eval.distractors",
           "eval.fidelity.temperature": "eval.temperature"}


def family(cfg):
    check_choice("experiment", cfg.get("experiment"), EXPERIMENTS)
    return EXPERIMENTS[cfg.experiment]


def validate(cfg) -> None:
    family(cfg).validate(cfg)


def build(cfg, corpus=None) -> Experiment:
    return family(cfg).build(cfg, corpus)


def run_config(workdir: str, experiment: str):
    """workdir/config.json as a ConfigDict (fields of older runs moved to their current paths)."""
    import ml_collections

    from metamusic import baselines

    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise MetamusicError(f"{workdir} has no config.json; train a {experiment} run there first")
    cfg = ml_collections.ConfigDict(json.load(open(path)))
    for old, new in RENAMED.items():
        _move(cfg, old, new)
    baselines.upgrade_config(cfg)
    if "experiment" not in cfg:  # runs before the field existed: the caller knows the family
        cfg.experiment = experiment
    if cfg.experiment != experiment:
        raise MetamusicError(f"{workdir} holds a {cfg.experiment} run, not a {experiment} run")
    cfg.progress = False
    return cfg


def _move(cfg, old: str, new: str) -> None:
    import ml_collections

    *path, leaf = old.split(".")
    node = cfg
    for p in path:
        if p not in node:
            return
        node = node[p]
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
        return
    value = node[leaf]
    *npath, nleaf = new.split(".")
    dst = cfg
    for p in npath:
        if p not in dst:
            dst[p] = ml_collections.ConfigDict()
        dst = dst[p]
    if nleaf not in dst:
        dst[nleaf] = value


__all__ = ["EXPERIMENTS", "Experiment", "build", "load_data", "load_test_data", "restore", "run_config", "validate"]
