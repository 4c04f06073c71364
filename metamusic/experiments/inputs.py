"""From a config to the arrays an experiment runs on: the token encoding, the corpus (bundled or a folder, or
another folder as meta-test), the bar-position channel, and numpy batches as device arrays."""

from __future__ import annotations

import jax.numpy as jnp

from metamusic.data import EncodingConfig, SplitConfig, load_corpus, without_tunes
from metamusic.meta.algorithm import Task


def encoding(cfg) -> EncodingConfig:
    d = cfg.data
    return EncodingConfig(steps_per_quarter=d.steps_per_quarter, min_note=d.min_note, max_note=d.max_note,
                          key_normalize=d.key_normalize, melody=d.get("melody", "skyline"))


def load_data(cfg):
    """The corpus of `cfg.data` (music21's bundled corpus when data.root is empty), cached."""
    d = cfg.data
    return load_corpus(d.root or None, cache_dir=d.cache_dir or None, workers=d.workers or None,
                       midi_backend=d.get("midi_backend", "symusic"), progress=cfg.progress, enc=encoding(cfg),
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
    c = load_corpus(cfg.eval.root, cache_dir=d.cache_dir or None, workers=d.workers or None,
                    midi_backend=d.get("midi_backend", "symusic"), progress=cfg.progress,
                    enc=encoding(cfg), split=SplitConfig(seed=d.split_seed, min_tunes=cfg.eval.min_tunes,
                                                          near_dup_threshold=_near(cfg)),
                    all_test=True)
    c, dropped = without_tunes(c, (m["hash"] for m in train_corpus.meta), cfg.eval.min_tunes,
                               near_copies_of=train_corpus, near_dup_threshold=_near(cfg))
    # every style left out under eval.min_tunes, before the copies were dropped or after, in the one record the
    # evaluations write (config.dropped.styles)
    small = c.report.get("styles_too_small", {})
    if small:
        c.report["dropped"] = {**dropped, "styles": {**small, **dropped.get("styles", {})}}
    if not c.styles:
        raise MetamusicError(f"eval.root={cfg.eval.root!r}: no style keeps eval.min_tunes={cfg.eval.min_tunes} "
                             f"tunes once tunes seen in training are dropped ({dropped})")
    return c


def bar_positions(cfg) -> int:
    """Bar-position codes the models read (data.bar_position), 0 when off (and for runs made before it)."""
    from metamusic.data.melody import MAX_POS

    return MAX_POS + 1 if cfg.data.get("bar_position", False) else 0


def to_task(tasks) -> Task:
    """data.Tasks (numpy) -> meta.Task of ((tokens, mask, bar positions) x support, query) device arrays."""
    return Task((jnp.asarray(tasks.support), jnp.asarray(tasks.support_mask), jnp.asarray(tasks.support_pos)),
                (jnp.asarray(tasks.query), jnp.asarray(tasks.query_mask), jnp.asarray(tasks.query_pos)))


def to_device(batch):
    """A NamedTuple of numpy arrays -> the same NamedTuple of device arrays."""
    return type(batch)(*(jnp.asarray(x) for x in batch))
