"""The one registry of meta-learning algorithms: name -> `Entry`.

An entry is a factory and the facts the rest of the code needs about the algorithm, so
no module outside this one asks for an algorithm by name:

  make             (loss_fn, inner: InnerSpec, hooks: Hooks, **options) -> Algorithm
  options          the per-algorithm options and their defaults, set in a config as
                   `meta.per_algorithm.<name>.<option>` (the one way to set them)
  per_task_weights every task of a meta-batch gets its own adapted weights (the outer
                   step then runs tasks one after another under meta.task_map="auto")
  needs            what the experiment's model must provide, among HOOKS: "head_mask"
                   (ANIL), "context_mask" (CAVIA), "encoder" (amortized: encoder_init and
                   condition), "prompt" (in-context: a model that reads the support tunes as
                   its prompt); "context_mask" and "encoder" need a model with a context vector
  lr_schedule      a meta-lr schedule the method prescribes (MAML++: cosine), else None
  adversarial      usable by the meta-GAN, whose inner lrs are a fixed pytree per player
  gan_label        its row label in the meta-GAN's tables

The MAML variants are `functools.partial`s of `meta.maml.make`. A new algorithm is one
`register(name, Entry(...))` call, in this file or in the user's own code: config
validation, training, evaluation, generation and the conformance tests read `ALGORITHMS`.
Baselines (joint training, fine-tuning, training from scratch) are not algorithms: see
`metamusic.baselines`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping, Optional

from metamusic.errors import MetamusicError
from metamusic.meta import amortized, maml, reptile
from metamusic.meta.algorithm import Algorithm, InnerSpec

HOOKS = ("head_mask", "context_mask", "encoder", "prompt")
# fields of meta.per_algorithm.<name> that every algorithm takes: its outer steps, and windows per tune
# of its training tasks (read by the experiment, not by the factory)
COMMON_OPTIONS = {"steps": 1, "tune_windows": 1}


@dataclasses.dataclass(frozen=True)
class Hooks:
    """What an experiment's model offers the algorithms that need it (see `Entry.needs`)."""

    head_mask: Optional[Callable] = None  # params -> 0/1 pytree, 1 on the output head
    context_mask: Optional[Callable] = None  # params -> 0/1 pytree, 1 on the context vector
    encoder_init: Optional[Callable] = None  # () -> support-encoder params
    condition: Optional[Callable] = None  # (encoder params, params, support) -> params conditioned on it
    prompt: Optional[Callable] = None  # (params, support) -> params that read the support as their prompt


@dataclasses.dataclass(frozen=True)
class Entry:
    make: Callable[..., Algorithm]
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    per_task_weights: bool = False
    needs: tuple = ()
    lr_schedule: Optional[str] = None
    adversarial: bool = False
    gan_label: str = ""

    @property
    def needs_context(self) -> bool:
        """Whether the model must carry a context vector (model.context_dim > 0)."""
        return bool({"context_mask", "encoder"} & set(self.needs))


def _maml_family(loss_fn, inner, hooks: Hooks, *, name: str, mask: Optional[str] = None, **options):
    """`maml.make` with the variant's options; `mask` names the hook whose mask sets what it adapts. The
    registry's MAML entries are `functools.partial`s of this."""
    if "context_lr" in options:  # CAVIA's name for the lr of what it adapts
        options["adapt_lr"] = options.pop("context_lr")
    if mask is not None:
        options["adapt_mask"] = getattr(hooks, mask)
    return maml.make(loss_fn, inner, name=name, **options)


def _reptile(loss_fn, inner, hooks: Hooks, **options):
    return reptile.make(loss_fn, inner)


def _amortized(loss_fn, inner, hooks: Hooks, **options):
    return amortized.make("amortized", loss_fn, inner, encoder_init=hooks.encoder_init, condition=hooks.condition)


def _incontext(loss_fn, inner, hooks: Hooks, **options):
    """In-context meta-learning: the amortized algorithm whose "encoder" is the model itself reading the
    support tunes as its prompt (no encoder weights of its own)."""
    if hooks.prompt is None:
        raise MetamusicError("incontext needs a model that reads a prompt (model.name='incontext')")
    return amortized.make("incontext", loss_fn, inner, encoder_init=lambda: {},
                          condition=lambda enc, params, support: hooks.prompt(params, support))


_maml = functools.partial(functools.partial, _maml_family)  # _maml(name=..., **options) -> a factory

ALGORITHMS: dict[str, Entry] = {
    "maml": Entry(_maml(name="maml"), per_task_weights=True, adversarial=True,
                  gan_label="meta-GAN, second-order MAML"),
    "fomaml": Entry(_maml(name="fomaml", first_order=True), per_task_weights=True, adversarial=True,
                    gan_label="meta-GAN, first-order MAML (DAWSON)"),
    "anil": Entry(_maml(name="anil", mask="head_mask"), needs=("head_mask",)),
    "metasgd": Entry(_maml(name="metasgd", learned_lrs="per_param"), per_task_weights=True),
    "mamlpp": Entry(_maml(name="mamlpp", learned_lrs="per_step", multi_step_loss=True), per_task_weights=True,
                    options={"msl_anneal_steps": 1000, "first_order_steps": 0}, lr_schedule="cosine"),
    "cavia": Entry(_maml(name="cavia", mask="context_mask"), needs=("context_mask",), options={"context_lr": 1.0}),
    "reptile": Entry(_reptile, per_task_weights=True, adversarial=True, gan_label="meta-GAN, Reptile (FIGR)"),
    "amortized": Entry(_amortized, needs=("encoder",), adversarial=True,
                       gan_label="meta-GAN, style-conditioned (amortized, no inner loop)"),
    "incontext": Entry(_incontext, needs=("prompt",)),
}


def register(name: str, entry: Entry, *, replace: bool = False) -> Entry:
    """Adds an algorithm (from a plug-in module or a notebook); every part of the library sees it at once."""
    if name in ALGORITHMS and not replace:
        raise MetamusicError(f"algorithm {name!r} is already registered; pass replace=True to override it")
    bad = set(entry.needs) - set(HOOKS)
    if bad:
        raise MetamusicError(f"algorithm {name!r} needs {sorted(bad)}; an entry may need only {list(HOOKS)}")
    ALGORITHMS[name] = entry
    return entry


def entry(name: str) -> Entry:
    if name not in ALGORITHMS:
        raise MetamusicError(f"meta.algorithm={name!r} is not allowed; choose one of {list(ALGORITHMS)}")
    return ALGORITHMS[name]


def option_default(name: str, option: str):
    """The default of meta.per_algorithm.<name>.<option> (None where the algorithm has no such option)."""
    if option in COMMON_OPTIONS:
        return COMMON_OPTIONS[option]
    e = ALGORITHMS.get(name)
    return None if e is None else e.options.get(option)


def options_of(name: str, given: Mapping[str, Any]) -> dict:
    """The factory options of algorithm `name`: its defaults updated by `given` (meta.per_algorithm.<name>),
    without the options every algorithm takes (steps, tune_windows)."""
    opts = dict(entry(name).options)
    opts.update({k: v for k, v in given.items() if k not in COMMON_OPTIONS})
    return opts


def task_map_for(name: str, choice: str = "auto") -> str:
    """How the outer step runs the tasks of algorithm `name` (`meta.outer.task_grads`): `choice`
    ("vmap" or "map"), or with "auto" map where each task has its own weights (batched per-task
    weight matmuls are slow on XLA:CPU, docs/design_notes.md) and vmap for every other method
    (baselines included), which shares the weights so vmap folds the tasks into one larger matmul."""
    if choice == "auto":
        e = ALGORITHMS.get(name)
        return "map" if e is not None and e.per_task_weights else "vmap"
    return choice


def make_algorithm(name: str, loss_fn: Callable, inner: InnerSpec, hooks: Optional[Hooks] = None,
                   **options) -> Algorithm:
    """An algorithm by name.

    Args:
      loss_fn: (params, batch, key) -> (loss, aux).
      hooks: what the model offers (masks, support encoder); an algorithm that needs a hook the
        model lacks is refused with one line naming it.
      options: the algorithm's options (`Entry.options`; defaults where not given).
    """
    e = entry(name)
    hooks = hooks or Hooks()
    for need in e.needs:
        have = (hooks.encoder_init is not None and hooks.condition is not None) if need == "encoder" else \
            getattr(hooks, need) is not None
        if not have:
            raise MetamusicError(f"{name} needs {need} from its experiment (a model with "
                                 + ("an output head" if need == "head_mask" else
                                    "a context, e.g. model.context_dim > 0") + ")")
    unknown = set(options) - set(e.options)
    if unknown:
        raise MetamusicError(f"{name} takes no option {sorted(unknown)}; its options: {list(e.options) or 'none'}")
    return e.make(loss_fn, inner, hooks, **options_of(name, options))


__all__ = ["ALGORITHMS", "COMMON_OPTIONS", "Entry", "HOOKS", "Hooks", "entry", "make_algorithm",
           "option_default", "options_of", "register", "task_map_for"]
