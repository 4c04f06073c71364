"""Experiment families: (config, corpus) -> a typed `Experiment` (see `base`).

  EXPERIMENTS     family name -> `Family` (validate, build, its evaluation, its entry script, ...)
  register_family(family)  adds one (a family of the user's own)
  validate(cfg)   checks every field a family reads, once, before any corpus load
  build(cfg, corpus)
  evaluate(exp, workdir, ...)  the family's evaluation
  run_config(workdir)  the config a run was trained with (workdir/config.json), upgraded (`legacy`)
The config's `experiment` field names the family.
"""

from __future__ import annotations

import json
import os
import re

from metamusic.errors import MetamusicError, check_choice
from metamusic.experiments import classify, gan, melody, sinusoid
from metamusic.experiments.base import Experiment, restore
from metamusic.experiments.inputs import load_data, load_test_data
from metamusic.experiments.family import Family

EXPERIMENTS: dict[str, Family] = {m.FAMILY.name: m.FAMILY for m in (melody, gan, classify, sinusoid)}


def register_family(fam: Family, *, replace: bool = False) -> Family:
    """Adds an experiment family; configs with `experiment=<fam.name>` then validate, build and evaluate."""
    if fam.name in EXPERIMENTS and not replace:
        raise MetamusicError(f"experiment family {fam.name!r} is already registered; pass replace=True")
    EXPERIMENTS[fam.name] = fam
    return fam

def family(cfg) -> Family:
    check_choice("experiment", cfg.get("experiment"), EXPERIMENTS)
    return EXPERIMENTS[cfg.experiment]


def validate(cfg) -> None:
    try:
        family(cfg).validate(cfg)
    except (AttributeError, KeyError) as e:  # ml_collections' error for a field the config file does not define
        name = re.search(r"'([^']+)'", str(e))
        raise MetamusicError(f"the config has no field {name.group(1) if name else str(e)!r}, which a "
                             f"{cfg.get('experiment', '?')} run needs: start a config file from the family's "
                             "(e.g. `c = configs.maml.get_config()` in get_config()) and change the fields you "
                             "need") from None


def build(cfg, corpus=None) -> Experiment:
    return family(cfg).build(cfg, corpus)


def evaluate(exp: Experiment, workdir: str, **kwargs) -> dict:
    """The evaluation of `exp`'s family (kwargs: test_corpus and name, for families with `cross_corpus`)."""
    return EXPERIMENTS[exp.family].evaluate(exp, workdir, **kwargs)


class ConfigFileError(MetamusicError):
    """A run's config.json that cannot be read (`run_config`)."""


def run_config(workdir: str, experiment: str):
    """workdir/config.json as a ConfigDict (fields of older runs moved to their current paths)."""
    import ml_collections

    from metamusic import legacy

    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise MetamusicError(f"{workdir} has no config.json; train a {experiment} run there first")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = ml_collections.ConfigDict(json.load(f))
    except (ValueError, TypeError, OSError) as e:  # zero bytes, a cut write, not JSON, not an object
        raise ConfigFileError(f"{path} is damaged ({type(e).__name__}: {str(e)[:80]}); it records the config the "
                              "run was trained with: restore it, or delete it and pass that config on the command "
                              "line (training then refuses checkpoints of another model shape)") from None
    legacy.upgrade_config(cfg, experiment)
    if "experiment" not in cfg:  # runs before the field existed: the caller knows the family
        cfg.experiment = experiment
    if cfg.experiment != experiment:
        fam = EXPERIMENTS.get(cfg.experiment)
        raise MetamusicError(f"{workdir} holds a {cfg.experiment} run, not a {experiment} run"
                             + (f" (its script is {fam.script})" if fam else ""))
    cfg.progress = False
    return cfg


__all__ = ["EXPERIMENTS", "ConfigFileError", "Experiment", "Family", "build", "evaluate", "load_data", "load_test_data", "register_family",
           "restore", "run_config", "validate"]
