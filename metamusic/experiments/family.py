"""What the entry scripts and the library ask of an experiment family, as one typed entry.

Each family module (melody, gan, classify, sinusoid) ends with `FAMILY = Family(...)`, and
`metamusic.experiments.EXPERIMENTS` maps the config's `experiment` field to it. The CLI,
training, evaluation and generation read these fields instead of comparing family names.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    validate: Callable  # cfg -> None; raises MetamusicError naming the field
    build: Callable  # (cfg, corpus) -> Experiment
    # "module:function" of evaluate(exp, workdir[, test_corpus, name]) -> results dict (it writes
    # workdir/<name>.json and .md where the family has a report); imported when called, since the
    # evaluation modules import the experiments
    evaluator: str
    script: str  # the entry script that runs it (run_maml.py, run_gan.py, run_relation.py)
    uses_corpus: bool = True  # loads data.root (or the bundled corpus); sinusoid draws its own tasks
    cross_corpus: bool = False  # evaluates a trained run on the styles of another folder (eval.root)
    sample_prefix: str = ""  # generated files are named <style>_<prefix><method>_NN

    def evaluate(self, exp, workdir: str, **kwargs) -> dict:
        module, _, fn = self.evaluator.partition(":")
        return getattr(importlib.import_module(module), fn)(exp, workdir, **kwargs)
