"""Adapt a trained melody model to a style from K tunes, then sample melodies to .mid + piano-roll .png.

The style is a catalog style (K tunes drawn from its support pool) or a folder of
MIDI/MusicXML/ABC/Humdrum files (read and encoded like the corpus).
"""

from __future__ import annotations

import glob
import os

import jax
import jax.numpy as jnp
import numpy as np

from metamusic.data import TaskSampler, formats, melody
from metamusic.errors import MetamusicError
from metamusic.train import checkpoint as ckpt_lib
from metamusic.train import melody as mel


def support_from_folder(folder: str, enc: melody.EncodingConfig, shots: int, length: int, rng):
    """(tokens [K, T], mask [K, T]) from the first `shots` readable tunes of a folder (shuffled)."""
    files = sorted(f for f in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                   if os.path.splitext(f)[1].lower() in formats.SUPPORTED_EXTS)
    tunes, reasons = [], []
    for f in files:
        for rec in formats.read_file(f):
            if isinstance(rec, formats.Skip):
                reasons.append(f"{rec.path}: {rec.reason}")
                continue
            try:
                tunes.append(melody.events_to_tokens(melody.extract_events(rec.sequence, enc), enc))
            except melody.MelodyError as e:
                reasons.append(f"{f}: {e}")
    if len(tunes) < shots:
        raise MetamusicError(f"{folder} has {len(tunes)} usable tunes, fewer than --shots={shots}"
                             + (f"; skipped: {reasons[:5]}" if reasons else ""))
    pick = rng.permutation(len(tunes))[:shots]
    tok = np.full((shots, length), enc.pad, np.int32)
    mask = np.zeros((shots, length), np.float32)
    for i, j in enumerate(pick):
        t = tunes[j][:length]
        tok[i, : len(t)], mask[i, : len(t)] = t, 1.0
    return tok, mask


def sample(model, params, prime: np.ndarray, *, num: int, length: int, temperature: float, key, enc):
    """Autoregressive samples [num, length] continuing `prime` (starting with BOS)."""
    buf = np.full((num, length), enc.pad, np.int32)
    buf[:, : len(prime)] = prime
    banned = jnp.zeros(enc.vocab_size).at[enc.pad].set(-jnp.inf).at[enc.bos].set(-jnp.inf)

    @jax.jit
    def run(buf, key):
        def body(t, carry):
            buf, key = carry
            key, sub = jax.random.split(key)
            logits = model.apply(params, buf)[:, t] / temperature + banned
            nxt = jax.random.categorical(sub, logits)
            return buf.at[:, t + 1].set(nxt), key

        buf, _ = jax.lax.fori_loop(len(prime) - 1, length - 1, body, (buf, key))
        return buf

    return np.asarray(run(jnp.asarray(buf), key))


def piano_roll(tokens: np.ndarray, enc: melody.EncodingConfig, path: str, title: str = "") -> None:
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
    fig.savefig(path, dpi=90)
    plt.close(fig)


def generate(cfg, workdir: str, *, style: str, shots: int, out: str, method: str | None = None,
             corpus=None) -> list[str]:
    """Adapts `method` (default: the first trained algorithm) to `style`, writes samples; returns paths."""
    g = cfg.generate
    s = mel.setup(cfg, corpus)
    method = method or mel.algorithms(cfg)[0]
    algo, _, template = mel.template_state(cfg, s, method)
    meta = ckpt_lib.load(os.path.join(workdir, method), template).meta
    rng = np.random.default_rng(g.seed)
    enc = s.corpus.enc
    if os.path.isdir(style):
        tok, mask = support_from_folder(style, enc, shots, cfg.data.length, rng)
    else:
        sampler = TaskSampler(s.corpus, [s.corpus.styles[s.corpus.style_index(style)]], shots=shots, queries=1,
                              length=cfg.data.length, pool="support/query")
        t = sampler.sample(rng, 1)
        tok, mask = t.support[0], t.support_mask[0]
    key = jax.random.PRNGKey(g.seed)
    res = algo.adapt(meta, (jnp.asarray(tok), jnp.asarray(mask)), key)
    prime = np.array([enc.bos], np.int32)
    if g.prime_steps > 0:  # open with the first support tune's opening
        first = tok[0][mask[0] > 0]
        prime = first[: 1 + g.prime_steps].astype(np.int32)
    samples = sample(s.model, res.params, prime, num=g.num, length=g.length, temperature=g.temperature,
                     key=jax.random.fold_in(key, 1), enc=enc)
    os.makedirs(out, exist_ok=True)
    paths = []
    label = os.path.basename(os.path.normpath(style)) if os.path.isdir(style) else style.replace("/", "_")
    for i, smp in enumerate(samples):
        base = os.path.join(out, f"{label}_{method}_{i:02d}")
        melody.tokens_to_midi(smp, enc, base + ".mid")
        piano_roll(smp, enc, base + ".png", f"{style} ({method}, K={shots}) #{i}")
        paths.append(base + ".mid")
    return paths
