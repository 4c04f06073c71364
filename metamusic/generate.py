"""Adapt a trained generative model to a style from K tunes, then sample melodies to .mid, .wav + piano-roll .png.

Works for every generative experiment (melody LMs, meta-GANs) and every method the
evaluation reports: a meta-learned algorithm adapts with `eval.steps` inner steps,
the joint model is used as trained, and `finetune` fine-tunes the joint model with
the lr and steps chosen on meta-val (the same choice as the evaluation's row).
The style is a catalog style (K tunes drawn from its support pool) or a folder of
MIDI/MusicXML/ABC/Humdrum files (read by the corpus's own reader and error policy).
"""

from __future__ import annotations

import logging
import os

import jax
import jax.numpy as jnp
import numpy as np

from metamusic.data import TaskSampler, melody
from metamusic.data.files import music_files, read_tunes, tiles, windows
from metamusic.errors import MetamusicError, check_choice
from metamusic.experiments import base
from metamusic.experiments.methods import adapter, rows

log = logging.getLogger("metamusic.generate")


def methods(exp: base.Experiment) -> tuple:
    """What --method accepts: the trained methods, the fine-tuned joint model and the "+finetune" rows."""
    return rows(exp)


def adapt(exp: base.Experiment, workdir: str, method: str, support, key, shots: int | None = None):
    """Params of `method` adapted to `support` (`shots` tunes) as the evaluation adapts them
    (`experiments.methods.adapter`)."""
    return adapter(exp, workdir, method, shots=shots).adapt(support, key).params


def generate(exp: base.Experiment, workdir: str, *, style: str, shots: int, out: str,
             method: str | None = None) -> list[str]:
    """Adapts `method` (default: the first meta-learned algorithm) to `style`, writes samples; returns paths."""
    cfg = exp.cfg
    g = cfg.generate
    method = method or exp.algorithms[0]
    check_choice("--method", method, rows(exp))
    rng = np.random.default_rng(g.seed)
    declared = []
    support = support_for(style, exp.corpus, shots, cfg.data.length, rng, cfg.eval.get("tune_windows", 1),
                          meters=declared)
    key = jax.random.PRNGKey(g.seed)
    params = adapt(exp, workdir, method, tuple(jnp.asarray(x) for x in support), key, shots)
    samples = exp.draw(params, support, jax.random.fold_in(key, 1))
    from metamusic.experiments import EXPERIMENTS

    tag = EXPERIMENTS[exp.family].sample_prefix + method
    return write_samples(samples, exp.enc, out, style, tag, shots, *sample_meter(exp, support, declared))


def sample_meter(exp, support, declared=()) -> tuple:
    """(meter, offset steps) of melodies drawn on `support`: the bar length the sampler counts in (the first
    support tune's, `experiments.melody.generated_positions`) as a meter, named as the support tunes declare
    it where one of theirs has that bar length; the offset places a primed opening at its bar position."""
    tok, mask, pos = (np.asarray(x[0]) for x in support)
    p = pos[mask > 0]
    spb = melody.steps_per_bar_of(p)
    first = p[p != melody.NO_POS][:1]  # the prime's first event (a crop of a catalog tune may not open with BOS)
    primed = exp.cfg.generate.get("prime_steps", 0) > 0 and len(first)
    return melody.meter_of(spb, exp.enc.steps_per_quarter, declared), int(first[0]) if primed else 0


def support_from_folder(folder: str, enc: melody.EncodingConfig, shots: int, length: int, rng, tune_windows: int = 1,
                        meters: list | None = None):
    """(tokens [n, T], mask [n, T], bar positions [n, T]) from `shots` readable tunes of a folder, drawn with
    `rng`: each tune's opening window, or with tune_windows=W its first W consecutive windows (as evaluation
    episodes take whole tunes). `meters`, when given, receives the drawn tunes' declared meters.
    A folder of style subfolders (a corpus root) is read as one style, its tunes pooled, and a warning says so."""
    files = music_files([folder])  # walked once: the subfolders are read off the files, which are then read
    subs = sorted({rel.split(os.sep)[0] for rel in (os.path.relpath(f, folder) for f in files)
                   if os.sep in rel and not rel.startswith("..")})
    if len(subs) > 1:
        log.warning("%s holds %d subfolders of music (%s); their tunes are pooled as one style: to generate in "
                    "one style, give its folder", folder, len(subs), ", ".join(subs[:4]) + (", ..." if len(subs) > 4 else ""))
    return support_from_files(files or [folder], enc, shots, length, rng, tune_windows, what=folder, meters=meters)


def support_from_files(paths, enc: melody.EncodingConfig, shots: int | None, length: int, rng, tune_windows: int = 1,
                       what: str = "the given files", meters: list | None = None, picked: list | None = None,
                       shots_field: str = "--shots"):
    """As `support_from_folder`, over a list of files or folders; shots=None takes every readable tune.
    `picked`, when given, receives the indices of the tunes drawn (their count is the K adapted to);
    `shots_field` is how the caller's user asked for the shots (named when there are too few tunes)."""
    metas = []
    tunes, positions, _, skipped = read_tunes(list(paths), enc, metas=metas)
    for s in skipped:  # every unreadable file or tune is named, as ingestion and --mode=classify name them
        log.warning("skipped %s", s)
    shots = len(tunes) if shots is None else shots
    if not tunes or len(tunes) < shots:
        raise MetamusicError(f"{what}: {len(tunes)} usable tunes, fewer than the {max(shots, 1)} shots asked ({shots_field})"
                             + (f"; skipped: {skipped[:5]}" if skipped else ""))
    pick = rng.permutation(len(tunes))[:shots]
    if picked is not None:
        picked.extend(int(j) for j in pick)
    if meters is not None:
        meters.extend(m for j in pick if (m := metas[j].get("meter")))
    if tune_windows <= 1:
        return windows([tunes[j] for j in pick], length, enc.pad, [positions[j] for j in pick])
    parts = [tiles([tunes[j]], length, enc.pad, [positions[j]]) for j in pick]
    return tuple(np.concatenate([p[i][:tune_windows] for p in parts]) for i in range(3))


def support_for(style: str, corpus, shots: int, length: int, rng, tune_windows: int = 1, meters: list | None = None):
    """K support tunes (tokens, mask, bar positions) of a catalog style (from its support pool) or a folder of
    files: one window each, or whole as up to `tune_windows` windows each. `meters`, when given, receives
    the meters the style's tunes declare (a folder's: the drawn tunes'; a catalog style's: all its tunes')."""
    if os.path.isdir(style):
        return support_from_folder(style, corpus.enc, shots, length, rng, tune_windows, meters)
    if meters is not None:
        k = corpus.style_index(style)
        meters.extend(m["meter"] for i, m in enumerate(corpus.meta) if corpus.style_of[i] == k and m.get("meter"))
    sampler = TaskSampler(corpus, [corpus.styles[corpus.style_index(style)]], shots=shots, queries=1,
                          length=length, pool="support/query", tune_windows=tune_windows)
    t = sampler.sample(rng, 1)
    return t.support[0], t.support_mask[0], t.support_pos[0]


def write_samples(samples, enc, out: str, style: str, method: str, shots: int, meter=None,
                  offset_steps: int = 0) -> list[str]:
    """Each token sequence (starting with BOS) -> OUT/<style>_<method>_NN.mid, .wav and .png; returns the .mid
    paths. meter, offset_steps: the time signature the MIDI declares and the silent steps before the first
    token (`sample_meter`)."""
    from metamusic import audio

    os.makedirs(out, exist_ok=True)
    paths = []
    label = os.path.basename(os.path.normpath(style)) if os.path.isdir(style) else style.replace("/", "_")
    for i, smp in enumerate(samples):
        stem = os.path.join(out, f"{label}_{method}_{i:02d}")
        melody.tokens_to_midi(smp, enc, stem + ".mid", meter=meter, offset_steps=offset_steps)
        audio.write_wav(audio.render(melody.tokens_to_sequence(smp, enc)), stem + ".wav")
        piano_roll(smp, enc, stem + ".png", f"{style} ({method}, K={shots}) #{i}")
        paths.append(stem + ".mid")
    return paths


def piano_roll(tokens: np.ndarray, enc: melody.EncodingConfig, path: str, title: str = "") -> None:
    import matplotlib.pyplot as plt

    fig = draw_piano_roll(tokens, enc, title)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def draw_piano_roll(tokens: np.ndarray, enc: melody.EncodingConfig, title: str = ""):
    """A matplotlib figure of one melody's notes (quarter notes across, MIDI pitch up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = melody.tokens_to_sequence(tokens, enc)
    fig, ax = plt.subplots(figsize=(10, 3))
    spq = 60.0 / ns.tempos[0].qpm if ns.tempos else 0.5
    for n in ns.notes:
        ax.add_patch(plt.Rectangle((n.start_time / spq, n.pitch - 0.4), (n.end_time - n.start_time) / spq, 0.8))
    ax.set_xlim(0, max([n.end_time / spq for n in ns.notes] + [1]))
    ax.set_ylim(enc.min_note - 1, enc.max_note)
    ax.set_xlabel("quarter notes")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title)
    fig.tight_layout()
    return fig


