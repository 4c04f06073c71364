"""The typed experiment: everything the loop, the evaluations and generation need from a family.

A family module (melody LMs, meta-GAN, style classification, sinusoid) turns
(config, corpus) into an `Experiment`; `train/` trains one by name, `eval/` and
`generate` restore and use one, and neither looks inside the family. A new family
is one module with `validate(cfg)`, `build(cfg, corpus)` and a `FAMILY` entry
(`experiments.family.Family`), registered in `metamusic.experiments.EXPERIMENTS`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional

from metamusic import baselines, checkpoints
from metamusic.meta.outer import init_state


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One family's experiment, built from (config, corpus).

    Methods are the names trained into workdir/<name>: the meta-learned algorithms
    of the config (`algorithms`), then the baselines the family trains (`baselines`).
    """

    family: str
    cfg: object
    corpus: object  # a data.Corpus, or None (sinusoid)
    loss_fn: Callable  # (params, batch, key) -> (loss, aux)
    init_params: Callable[[], object]  # fresh params (fixed by cfg.seed)
    algorithms: tuple  # meta-learned method names, config order
    baselines: tuple  # trained baselines (baselines.JOINT), empty if none
    algorithm: Callable  # name -> meta.Algorithm
    optimizer: Callable  # name -> optax.GradientTransformation
    train_steps: Callable  # name -> outer steps
    train_sampler: Callable  # name -> (step -> device batch of tasks)
    val_eval: Callable  # (name, algorithm) -> (state, step) -> metrics, or None
    label: Callable = lambda name: name  # display name of a method
    model: object = None  # the network evaluation and sampling apply
    enc: object = None  # the token encoding (data.EncodingConfig), None for non-music families
    # Generative families (None elsewhere):
    # (params, support, *, num, length, temperature, key, ...) -> tokens: the family's sampler
    sample: Optional[Callable] = None
    draw: Optional[Callable] = None  # (adapted params, support, key) -> generate.num melodies, BOS first
    # (exp[, baseline]) -> baselines.Tuning: how fine-tuning a trained baseline is tuned on meta-val
    tuning: Optional[Callable] = None
    # (exp, algorithm) -> baselines.Tuning: fine-tuning after the algorithm's adaptation ("<m>+finetune" rows)
    tuning_after: Optional[Callable] = None
    start_params: Optional[Callable] = None  # name -> params a method starts from where not init_params()
    parts: object = None  # the family's own typed pieces (melody.MelodyParts, gan.GanParts, classify.ClassifyParts)
    # name -> the method whose trained params start this one (e.g. meta-training from the joint
    # model), or None for a fresh init_params()
    start_from: Callable = lambda name: None
    init_field: str = "meta.init"  # the config field that says where methods start (named in errors)
    # names of the parameter modules only some methods build (a classification run's ridge scale, its
    # pretraining layer): a method trained in a run with another list of methods restores without them
    optional_parts: tuple = ()

    @property
    def optional(self) -> Optional[Callable[[tuple], bool]]:
        """Whether an array at a path (checkpoints.path_key) belongs to a part only some methods build; None
        where every method builds the same parts (checkpoints then restore as saved)."""
        parts = self.optional_parts
        return (lambda path: any(part in path for part in parts)) if parts else None

    @property
    def methods(self) -> tuple:
        """Every method to train, each after the method it starts from."""
        sources = {self.start_from(n) for n in self.algorithms + self.baselines} - {None}
        first = tuple(b for b in self.baselines if b in sources)
        algos = tuple(a for a in self.algorithms if a in sources) + tuple(a for a in self.algorithms if a not in sources)
        return first + algos + tuple(b for b in self.baselines if b not in sources)


def restore(exp: Experiment, workdir: str, name: str):
    """The trained `meta` pytree of method `name` (latest checkpoint in its folder)."""
    algo = exp.algorithm(name)
    template = init_state(algo, exp.optimizer(name), exp.init_params())
    return checkpoints.load(baselines.run_dir(workdir, name), template, exp.optional).meta


def start_params(exp: Experiment, workdir: str, name: str):
    """The params method `name` starts training from: a fresh init, or the trained params of the
    method it starts from (its latest checkpoint in workdir)."""
    from metamusic.errors import MetamusicError

    src = exp.start_from(name)
    if src is None:  # a family may start some methods from params of its own (the GAN from a melody run)
        return exp.start_params(name) if exp.start_params is not None else exp.init_params()
    folder = baselines.run_dir(workdir, src)
    field = exp.init_field
    missing = MetamusicError(f"{name} starts from the trained {src} model ({field}={src}), but {folder} has no "
                             f"checkpoint: train {src} first (--mode=train does) or set {field}=random")
    if not os.path.isdir(os.path.join(folder, "checkpoints")):  # checked first: the manager would create it
        raise missing
    try:
        return restore(exp, workdir, src)["params"]
    except MetamusicError:
        raise missing from None



