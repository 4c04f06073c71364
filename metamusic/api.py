"""The Python API: what the entry scripts do, as functions for a notebook or a script of your own.

    import metamusic as mm
    cfg = mm.config("maml_tiny")                 # configs/maml_tiny.py, or a path to a config file
    exp = mm.build(cfg, mm.load_corpus(cfg))     # the bundled corpus, or cfg.data.root = "ROOT/<style>/<files>"
    mm.fit(exp, "runs/demo")                     # every method, each after the one it starts from
    mm.evaluate(exp, "runs/demo")                # the family's evaluation -> runs/demo/eval.{json,md,png}
    adapted = mm.adapt(exp, "runs/demo", "fomaml", ["a.mid", "b.abc"])
    mm.sample(exp, adapted, out="samples")       # .mid, .wav and piano-roll .png files

Every function validates before it works, and every error a user can cause is a
`MetamusicError` with one line naming the field, as on the command line.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Optional, Sequence, Union

from metamusic.errors import MetamusicError


def shipped_configs() -> list:
    """The names of the configs shipped in `configs/`."""
    import pkgutil

    import configs

    return sorted(m.name for m in pkgutil.iter_modules(configs.__path__) if not m.name.startswith("_"))


def config(name: str = "maml", **overrides):
    """The ConfigDict of a shipped config (`configs/<name>.py`: maml, maml_tiny, relation, gan, gan_tiny,
    sinusoid, ...) or of a config file at a path, with `overrides` as field paths (`meta__inner_lr=0.1`
    sets meta.inner_lr), each checked like a --config.FIELD=VALUE flag."""
    if name.endswith(".py") or os.path.sep in name:
        from metamusic.config_file import load_config

        cfg = load_config(name)
    else:
        try:
            cfg = importlib.import_module(f"configs.{name}").get_config()
        except ModuleNotFoundError:
            raise MetamusicError(f"config {name!r}: no configs/{name}.py; give a shipped config name "
                                 f"({', '.join(shipped_configs())}) or a path") from None
    from metamusic.config_file import set_field

    for field, value in overrides.items():
        set_field(cfg, field.replace("__", "."), value if isinstance(value, str) else _text(value))
    return cfg


def _text(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def load_corpus(cfg):
    """The corpus of `cfg.data`: music21's bundled corpus when data.root is empty, else the folder
    ROOT/<style>/<files> (MIDI, MusicXML, ABC, Humdrum), ingested once and cached."""
    from metamusic import experiments

    experiments.validate(cfg)
    return experiments.load_data(cfg) if experiments.family(cfg).uses_corpus else None


def build(cfg, corpus=None):
    """The experiment of `cfg` on `corpus` (validated first): its methods, models and losses."""
    from metamusic import experiments

    experiments.validate(cfg)
    return experiments.build(cfg, corpus)


def fit(exp, workdir: str, methods: Optional[Sequence[str]] = None) -> dict:
    """(Named `fit`, not `train`: `metamusic.train` is the training subpackage.) Trains `methods` (default: all of the experiment's, each after the method it starts from) into
    workdir/<method>, resuming from the latest checkpoint there; returns {method: final state}."""
    from metamusic.train.trainer import train as train_one

    names = list(exp.methods) if methods is None else ([methods] if isinstance(methods, str) else list(methods))
    for n in names:
        if n not in exp.methods:
            raise MetamusicError(f"method {n!r} is not trained by this experiment; choose from {list(exp.methods)}")
    import contextlib

    import jax

    from metamusic.workdir import check_writable_folder, config_written, locked

    # the command line's checks: a workdir of another run's model, data or seed is refused before config.json is
    # rewritten, and a second run into the same workdir is refused while this one holds it (process 0 of a
    # multi-process run writes and locks, as on the command line)
    check_writable_folder(workdir, "workdir")
    first = jax.process_index() == 0
    with locked(workdir) if first else contextlib.nullcontext(), config_written(exp.cfg, workdir, first):
        return {n: train_one(exp, workdir, n) for n in names}


def evaluate(exp, workdir: str) -> dict:
    """The family's evaluation of a trained workdir (writes workdir/eval.json and .md); returns the results."""
    from metamusic import experiments

    return experiments.evaluate(exp, workdir)


@dataclasses.dataclass(frozen=True)
class Adapted:
    """A method adapted to a few tunes: its params, the support windows it read, and names for output."""

    method: str
    params: object
    support: tuple  # (tokens, mask, bar positions) numpy arrays
    style: str  # a label for the files written from it
    meters: tuple = ()  # the meters the support tunes declare (names the meter the samples are written in)


def adapt(exp, workdir: str, method: str, files: Union[str, Sequence[str]], shots: Optional[int] = None, seed: int = 0,
          style: str = "my_style") -> Adapted:
    """Adapts trained `method` (any row the evaluation reports: an algorithm, `joint`, `finetune`,
    `<method>+finetune`) to `shots` tunes (default: all) read from `files` (a file or folder, or a list of them; any format),
    as the evaluation adapts it; unreadable files are skipped with their reason."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from metamusic.experiments.methods import adapter
    from metamusic.generate import support_from_files

    if isinstance(files, (str, os.PathLike)):  # one path, not a sequence of its characters
        files = [files]
    files = [os.path.expanduser(os.fspath(f)) for f in files]
    if not files:
        raise MetamusicError("adapt needs at least one tune file or folder")
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise MetamusicError(f"adapt: no such file or folder: {', '.join(missing[:3])}")
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1):
        raise MetamusicError(f"shots={shots!r}: give a whole number >= 1, or None for every readable tune")
    cfg = exp.cfg
    meters, picked = [], []
    support = support_from_files(files, exp.enc, shots, cfg.data.length, np.random.default_rng(seed),
                                 cfg.eval.get("tune_windows", 1), meters=meters, picked=picked, shots_field="shots=")
    a = adapter(exp, workdir, method, field="method", shots=len(picked))  # that K's fine-tuning choice
    params = a.adapt(tuple(jnp.asarray(x) for x in support), jax.random.PRNGKey(seed)).params
    return Adapted(method, params, support, style, tuple(meters))


def sample(exp, adapted: Adapted, out: str, seed: int = 0) -> list[str]:
    """generate.num melodies of the adapted model, in the meter of its first support tune, written to
    OUT/<style>_<method>_NN.mid (+ .wav and a piano-roll .png); returns the .mid paths."""
    import jax

    from metamusic.experiments import EXPERIMENTS
    from metamusic.generate import sample_meter, write_samples

    if exp.draw is None:
        raise MetamusicError(f"the {exp.family} family does not generate music")
    tokens = exp.draw(adapted.params, adapted.support, jax.random.fold_in(jax.random.PRNGKey(seed), 1))
    tag = EXPERIMENTS[exp.family].sample_prefix + adapted.method
    return write_samples(tokens, exp.enc, out, adapted.style, tag, len(adapted.support[0]),
                         *sample_meter(exp, adapted.support, adapted.meters))


__all__ = ["Adapted", "adapt", "build", "config", "evaluate", "load_corpus", "fit", "sample"]
