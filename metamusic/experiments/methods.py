"""A method of an experiment, resolved in one place for training, evaluation and generation.

  Method   what training needs of one trained method: algorithm, optimizer, steps, the
           sampler of its training batches, its meta-val check, label, where it starts
           and how the outer step runs its tasks (`method(exp, name)`).
  Adapter  what evaluation and generation need to adapt one row to K tunes: the algorithm,
           the trained `meta`, the inner steps, and the fine-tuning choice where the row has
           one (`adapter(exp, workdir, row)`). A row is a trained method (a meta-learned
           algorithm adapts with eval.steps, a trained baseline is used as trained),
           `finetune` (the joint model fine-tuned with the lr and steps chosen on meta-val), or
           `<method>+finetune` (eval.finetune_after: the method's adaptation, then fine-tuning).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import optax

from metamusic import baselines
from metamusic.errors import check_choice
from metamusic.experiments.base import Experiment, restore
from metamusic.meta.algorithm import Algorithm
from metamusic.meta.registry import task_map_for


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    label: str
    algorithm: Algorithm
    optimizer: optax.GradientTransformation
    steps: int  # outer steps to train
    sampler: Callable  # step -> device batch of training tasks
    validation: Optional[Callable]  # (state, step) -> metrics on fixed meta-val tasks, or None
    start_from: Optional[str]  # the method whose trained params it starts from; None: a fresh init
    task_map: str  # how the outer step runs a meta-batch's tasks ("vmap" or "map")


@dataclasses.dataclass(frozen=True)
class Adapter:
    name: str
    algorithm: Algorithm
    meta: object  # the trained meta pytree the row adapts from
    steps: Optional[int]  # inner steps of its adaptation (None: the algorithm's own)
    choice: Optional[baselines.Choice] = None  # the fine-tuning lr and steps chosen on meta-val, if any

    def adapt(self, support, key, **kwargs):
        """The row's adaptation to `support` (kwargs: query, as `Algorithm.adapt` takes it)."""
        return self.algorithm.adapt(self.meta, support, key, steps=self.steps, **kwargs)


def method(exp: Experiment, name: str) -> Method:
    """Method `name` of `exp` resolved for training."""
    algo = exp.algorithm(name)
    return Method(name=name, label=exp.label(name), algorithm=algo, optimizer=exp.optimizer(name),
                  steps=exp.train_steps(name), sampler=exp.train_sampler(name), validation=exp.val_eval(name, algo),
                  start_from=exp.start_from(name),
                  task_map=task_map_for(name, exp.cfg.meta.get("task_map", "vmap") if "meta" in exp.cfg else "vmap"))


def rows(exp) -> tuple:
    """Every row evaluation and generation can adapt: the trained methods, the fine-tuned joint model where
    the family tunes fine-tuning, and the "<method>+finetune" rows."""
    tuned = (baselines.FINETUNE,) if exp.tuning is not None and baselines.JOINT in exp.baselines else ()
    return exp.methods + tuned + tuple(then_finetuned_rows(exp))


def then_finetuned_rows(exp) -> dict:
    """{"<method>+finetune": method} for the methods of eval.finetune_after trained in this run (families
    that tune fine-tuning after an adaptation, `Experiment.tuning_after`; others have none)."""
    after = exp.cfg.eval.get("finetune_after", ()) if exp.tuning_after is not None else ()
    return {f"{n}+{baselines.FINETUNE}": n for n in after if n in exp.algorithms}


def tuned_shots(exp, shots: Optional[int]) -> Optional[int]:
    """The K whose meta-val choice of fine-tuning a row adapting to `shots` tunes uses.

    With baselines.tune_per_k (families whose tuning takes a K), every K of eval.shots has its own choice:
    the K of eval.shots nearest to `shots` (the smaller on a tie; None: the middle K). Otherwise None: one
    choice, made at the middle K, serves every K (runs made before per-K tuning)."""
    b = exp.cfg.get("baselines", {})
    if not b.get("tune_per_k", False):
        return None
    ks = sorted(exp.cfg.eval.shots)
    if shots is None:
        return ks[len(ks) // 2]
    return min(ks, key=lambda k: (abs(k - shots), k))


def _choice(exp, workdir, tuning_of, meta, method, shots):
    """The saved or fresh meta-val choice of fine-tuning for `method`, at K=`shots` (None: the one choice)."""
    k = tuned_shots(exp, shots)
    if k is None:
        return baselines.finetune_choice(workdir, tuning_of(), meta, method=method)
    return baselines.finetune_choice(workdir, tuning_of(shots=k), meta, tag=f"{baselines.FINETUNE}_K{k}",
                                     method=method)


def adapter(exp, workdir: str, row: str, meta=None, *, field: str = "--method", shots: Optional[int] = None) -> Adapter:
    """How row `row` adapts to `shots` support tunes (the fine-tuning choice made for that K where the
    family tunes per K, `tuned_shots`), with its trained meta (read from workdir unless given) and choices."""
    check_choice(field, row, rows(exp))
    cfg = exp.cfg
    then = then_finetuned_rows(exp)
    if row in then:
        name = then[row]
        first = exp.algorithm(name)
        meta = restore(exp, workdir, name) if meta is None else meta
        choice = _choice(exp, workdir, lambda **k: exp.tuning_after(exp, first, **k), meta, name, shots)
        algo = baselines.then_finetune(first, exp.loss_fn, choice.lr, choice.steps, cfg.meta.remat, cfg.eval.steps)
        return Adapter(row, algo, meta, choice.steps, choice)
    if row == baselines.FINETUNE:
        meta = restore(exp, workdir, baselines.JOINT) if meta is None else meta
        choice = _choice(exp, workdir, lambda **k: exp.tuning(exp, **k), meta, baselines.JOINT, shots)
        algo = baselines.finetune_algorithm(exp.loss_fn, choice.lr, choice.steps, cfg.meta.remat)
        return Adapter(row, algo, meta, choice.steps, choice)
    meta = restore(exp, workdir, row) if meta is None else meta
    return Adapter(row, exp.algorithm(row), meta, 0 if row in exp.baselines else cfg.eval.steps)
