"""What a command checks of the runs it reads before it works, besides the workdir's own rules (`workdir`): the
config a workdir's run was trained with against the command line's, methods left short of their steps, the runs
named by eval.scorer and eval.melody_workdir. Each problem is one warning or one MetamusicError line."""

from __future__ import annotations

import os
import sys

from metamusic.errors import MetamusicError
from metamusic.workdir import config_diffs, get_field


# Fields naming another trained run that an evaluation reads: field -> (its family, what it gives).
EVAL_RUNS = {"eval.scorer": ("classify", "style fidelity"), "eval.melody_workdir": ("melody", "the melody LM rows")}


def check_runs_read_by_the_evaluation(cfg) -> None:
    """Before any work: a run named by eval.scorer or eval.melody_workdir that is of another family is refused,
    naming the field; one that is not there is said at once (the evaluation leaves its rows out)."""
    from metamusic import experiments

    for field, (family, gives) in EVAL_RUNS.items():
        path = get_field(cfg, field)
        if not path:
            continue
        if not os.path.exists(os.path.join(path, "config.json")):
            print(f"warning: {field}={path}: no trained {family} run there ({experiments.EXPERIMENTS[family].script}); "
                  f"{gives} left out of this evaluation", file=sys.stderr)
            continue
        try:
            experiments.run_config(path, family)
        except MetamusicError as e:
            raise MetamusicError(f"{field}={path}: {e}") from None


def warn_if_partly_trained(exp, workdir: str) -> None:
    """One stderr line naming the methods whose newest checkpoint is short of their training steps (a run
    that was stopped): their figures are those of a partly trained model."""
    from metamusic import baselines
    from metamusic.checkpoints import latest_step

    short = []
    for name in exp.methods:
        step, steps = latest_step(baselines.run_dir(workdir, name)), exp.train_steps(name)
        if step is not None and step < steps:
            short.append(f"{name} at step {step} of {steps}")
    if short:
        print(f"warning: {workdir} holds partly trained models ({', '.join(short)}); they are evaluated as they "
              "are: run --mode=train with the same config to finish them", file=sys.stderr)


def warn_if_trained_differently(cfg, workdir: str) -> None:
    """One stderr line naming the model/meta/data fields whose value differs from the run's config.json:
    evaluating with another inner lr or encoding than the run was trained with changes the numbers. A run of
    another family (a classification workdir given to run_maml.py) is refused, by its family's name."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return
    from metamusic import experiments

    try:
        trained = experiments.run_config(workdir, cfg.experiment)
    except experiments.ConfigFileError as e:  # the command line's config is used; say that it could not be checked
        print(f"warning: {e}; evaluating with the command line's config", file=sys.stderr)
        return
    except MetamusicError:  # another family's run (a classification workdir given to run_maml.py), by its name
        raise
    except ValueError:  # a field an older run wrote in a form `legacy` cannot read: nothing to compare
        return
    diffs = config_diffs(cfg, trained, ("model", "meta", "data"))
    if diffs:
        print(f"warning: {workdir} was trained with {', '.join(diffs[:6])}; pass --config.FIELD=VALUE to "
              "evaluate it as trained", file=sys.stderr)
