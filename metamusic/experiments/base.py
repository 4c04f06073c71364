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

import jax
import jax.numpy as jnp
import optax

from metamusic import baselines, checkpoints
from metamusic.data import EncodingConfig, SplitConfig, load_corpus, without_tunes
from metamusic.errors import check_choice, check_range, comma_list
from metamusic.meta.algorithm import Task
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
    parts: dict = dataclasses.field(default_factory=dict)  # family-internal pieces (embed, relate, critic, ...)
    # name -> the method whose trained params start this one (e.g. meta-training from the joint
    # model), or None for a fresh init_params()
    start_from: Callable = lambda name: None
    init_field: str = "meta.init"  # the config field that says where methods start (named in errors)

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
    return checkpoints.load(baselines.run_dir(workdir, name), template).meta


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


def make_optimizer(lr: float, *, clip: float = 0.0, b1: float = 0.9, schedule: str = "constant",
                   steps: int = 1) -> optax.GradientTransformation:
    """The one optimizer construction: Adam, optionally after global-norm clipping, with a constant
    or cosine (to 5% of `lr`) schedule."""
    if schedule == "cosine":
        lr = optax.cosine_decay_schedule(lr, steps, alpha=0.05)
    adam = optax.adam(lr, b1=b1)
    return optax.chain(optax.clip_by_global_norm(clip), adam) if clip else adam


def encoding(cfg) -> EncodingConfig:
    d = cfg.data
    return EncodingConfig(steps_per_quarter=d.steps_per_quarter, min_note=d.min_note, max_note=d.max_note,
                          key_normalize=d.key_normalize)


def load_data(cfg):
    """The corpus of `cfg.data` (music21's bundled corpus when data.root is empty), cached."""
    d = cfg.data
    return load_corpus(d.root or None, cache_dir=d.cache_dir or None, workers=d.workers or None,
                       progress=cfg.progress, enc=encoding(cfg),
                       split=SplitConfig(seed=d.split_seed, min_tunes=d.min_tunes, near_dup_threshold=_near(cfg),
                                         group_same_names=bool(d.get("group_same_names", False))))


def _near(cfg) -> float:
    """data.near_dup_threshold; 0 (off) for a run saved before the field existed, so its config.json
    loads the corpus it was trained on."""
    return float(cfg.data.get("near_dup_threshold", 0.0))


def load_test_data(cfg, train_corpus):
    """The collection at eval.root as meta-test styles only (cross-corpus evaluation of a trained run).

    Encoded as the run's corpus; every tune whose content hash is in `train_corpus` (which the
    run trained or was tuned on) is dropped first, then styles under eval.min_tunes.
    """
    from metamusic.errors import MetamusicError

    d = cfg.data
    c = load_corpus(cfg.eval.root, cache_dir=d.cache_dir or None, workers=d.workers or None, progress=cfg.progress,
                    enc=encoding(cfg), split=SplitConfig(seed=d.split_seed, min_tunes=cfg.eval.min_tunes,
                                                          near_dup_threshold=_near(cfg)),
                    all_test=True)
    c, dropped = without_tunes(c, (m["hash"] for m in train_corpus.meta), cfg.eval.min_tunes,
                               near_copies_of=train_corpus, near_dup_threshold=_near(cfg))
    if not c.styles:
        raise MetamusicError(f"eval.root={cfg.eval.root!r}: no style keeps eval.min_tunes={cfg.eval.min_tunes} "
                             f"tunes once tunes seen in training are dropped ({dropped})")
    return c


def to_task(tasks) -> Task:
    """data.Tasks (numpy) -> meta.Task of ((tokens, mask, bar positions) x support, query) device arrays."""
    return Task((jnp.asarray(tasks.support), jnp.asarray(tasks.support_mask), jnp.asarray(tasks.support_pos)),
                (jnp.asarray(tasks.query), jnp.asarray(tasks.query_mask), jnp.asarray(tasks.query_pos)))


def bar_positions(cfg) -> int:
    """Bar-position codes the models read (data.bar_position), 0 when off (and for runs made before it)."""
    from metamusic.data.melody import MAX_POS

    return MAX_POS + 1 if cfg.data.get("bar_position", False) else 0


def to_device(batch):
    """A NamedTuple of numpy arrays -> the same NamedTuple of device arrays."""
    return type(batch)(*(jnp.asarray(x) for x in batch))


def head_mask(params):
    """1.0 on parameters under a submodule named `head` (what ANIL adapts), 0.0 elsewhere."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.float32(any(getattr(k, "key", None) == "head" for k in path)), params)


def context_mask(params):
    """1.0 on the context vector (a submodule named `context`, what CAVIA adapts), 0.0 elsewhere."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.float32(any(getattr(k, "key", None) == "context" for k in path)), params)


def algorithm_names(cfg, allowed) -> list[str]:
    return comma_list("meta.algorithm", cfg.meta.algorithm, allowed)


# -- validation shared by the families (each field named by its full path) --

def validate_loop(cfg) -> None:
    check_range("seed", cfg.seed, 0)
    check_range("steps", cfg.steps, 1)
    check_range("log_every", cfg.log_every, 1)
    check_range("checkpoint_every", cfg.checkpoint_every, 1)
    check_range("eval_every", cfg.get("eval_every", 0), 0)
    check_range("max_bad_streak", cfg.get("max_bad_streak", 20), 1)
    check_range("meta.batch", cfg.meta.batch, 1)
    if "task_map" in cfg.meta:
        from metamusic.meta.outer import TASK_MAPS

        check_choice("meta.task_map", cfg.meta.task_map, TASK_MAPS + ("auto",))
    if "sharding" in cfg:
        check_range("sharding.devices", cfg.sharding.devices, -1)
        cpu = cfg.sharding.get("cpu_devices", 0)
        check_range("sharding.cpu_devices", cpu, 0)
        if cpu > 1 and cfg.meta.batch % cpu:
            raise_bad("sharding.cpu_devices", cpu, f"a divisor of meta.batch={cfg.meta.batch} (or 0 / 1: off)")


def validate_data(cfg, *, min_length: int = 2) -> None:
    d = cfg.data
    check_range("data.steps_per_quarter", d.steps_per_quarter, 1)
    check_range("data.min_note", d.min_note, 0, 127)
    check_range("data.max_note", d.max_note, d.min_note + 1, 128)
    check_range("data.min_tunes", d.min_tunes, 2)
    check_range("data.shots", d.shots, 1)
    check_range("data.queries", d.queries, 1)
    check_range("data.length", d.length, min_length)
    check_range("data.transpose", d.transpose, 0, 12)
    check_range("data.workers", d.workers, 0)
    check_range("data.split_seed", d.split_seed, 0)
    if "bar_position" in d:
        check_choice("data.bar_position", d.bar_position, (True, False))
    for k in cfg.eval.shots:
        check_range("eval.shots (each)", k, 1)


def validate_optim(cfg) -> None:
    check_positive("optim.lr", cfg.optim.lr)
    check_range("optim.clip", cfg.optim.clip, 0, integer=False)
    if "schedule" in cfg.optim:
        check_choice("optim.schedule", cfg.optim.schedule, ("constant", "cosine"))


def raise_bad(field: str, value, must: str):
    from metamusic.errors import MetamusicError

    raise MetamusicError(f"{field}={value!r} is out of range; it must be {must}")


def check_positive(field: str, value) -> None:
    check_range(field, value, integer=False)
    if value <= 0:
        raise_bad(field, value, "> 0")
