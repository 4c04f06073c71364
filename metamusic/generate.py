"""Adapt a trained melody model to a style from K tunes, then sample melodies to .mid + piano-roll .png.

The style is a catalog style (K tunes drawn from its support pool) or a folder of
MIDI/MusicXML/ABC/Humdrum files (read and encoded like the corpus).
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from metamusic.data import TaskSampler, melody
from metamusic.errors import MetamusicError
from metamusic.train import checkpoint as ckpt_lib
from metamusic.train import melody as mel


def support_from_folder(folder: str, enc: melody.EncodingConfig, shots: int, length: int, rng):
    """(tokens [K, T], mask [K, T]) from `shots` readable tunes of a folder, drawn with `rng`."""
    from metamusic.eval.style_fidelity import read_tunes, windows

    tunes, _, skipped = read_tunes([folder], enc)
    if len(tunes) < shots:
        raise MetamusicError(f"{folder} has {len(tunes)} usable tunes, fewer than --shots={shots}"
                             + (f"; skipped: {skipped[:5]}" if skipped else ""))
    pick = rng.permutation(len(tunes))[:shots]
    return windows([tunes[j] for j in pick], length, enc.pad)


def sample(model, params, prime: np.ndarray, *, num: int, length: int, temperature: float, key, enc):
    """Autoregressive samples [num, length] continuing `prime` (starting with BOS)."""
    buf = np.full((num, length), enc.pad, np.int32)
    buf[:, : len(prime)] = prime
    run = _sampler(model, enc, len(prime), length, float(temperature))
    return np.asarray(run(params, jnp.asarray(buf), key))


@functools.lru_cache(maxsize=32)
def _sampler(model, enc, prime_len: int, length: int, temperature: float):
    """One compiled sampling loop per (model, shapes): evaluation samples for many styles and methods."""
    banned = jnp.zeros(enc.vocab_size).at[enc.pad].set(-jnp.inf).at[enc.bos].set(-jnp.inf)

    @jax.jit
    def run(params, buf, key):
        def body(t, carry):
            buf, key = carry
            key, sub = jax.random.split(key)
            logits = model.apply(params, buf)[:, t] / temperature + banned
            return buf.at[:, t + 1].set(jax.random.categorical(sub, logits)), key

        return jax.lax.fori_loop(prime_len - 1, length - 1, body, (buf, key))[0]

    return run


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
    tok, mask = support_for(style, s.corpus, shots, cfg.data.length, rng)
    key = jax.random.PRNGKey(g.seed)
    res = algo.adapt(meta, (jnp.asarray(tok), jnp.asarray(mask)), key)
    prime = np.array([enc.bos], np.int32)
    if g.prime_steps > 0:  # open with the first support tune's opening
        first = tok[0][mask[0] > 0]
        prime = first[: 1 + g.prime_steps].astype(np.int32)
    samples = sample(s.model, res.params, prime, num=g.num, length=g.length, temperature=g.temperature,
                     key=jax.random.fold_in(key, 1), enc=enc)
    return write_samples(samples, enc, out, style, method, shots)


def support_for(style: str, corpus, shots: int, length: int, rng):
    """K support windows (tokens, mask) of a catalog style (from its support pool) or a folder of files."""
    if os.path.isdir(style):
        return support_from_folder(style, corpus.enc, shots, length, rng)
    sampler = TaskSampler(corpus, [corpus.styles[corpus.style_index(style)]], shots=shots, queries=1,
                          length=length, pool="support/query")
    t = sampler.sample(rng, 1)
    return t.support[0], t.support_mask[0]


def write_samples(samples, enc, out: str, style: str, method: str, shots: int) -> list[str]:
    """Each token sequence (starting with BOS) -> OUT/<style>_<method>_NN.mid and .png; returns the .mid paths."""
    os.makedirs(out, exist_ok=True)
    paths = []
    label = os.path.basename(os.path.normpath(style)) if os.path.isdir(style) else style.replace("/", "_")
    for i, smp in enumerate(samples):
        base = os.path.join(out, f"{label}_{method}_{i:02d}")
        melody.tokens_to_midi(smp, enc, base + ".mid")
        piano_roll(smp, enc, base + ".png", f"{style} ({method}, K={shots}) #{i}")
        paths.append(base + ".mid")
    return paths


def generate_gan(cfg, workdir: str, *, style: str, shots: int, out: str, method: str | None = None,
                 corpus=None) -> list[str]:
    """Adapts a trained (meta-)GAN to `style` from `shots` tunes and writes its samples; returns paths."""
    from metamusic.train import gan

    s = gan.setup(cfg, corpus)
    method = method or gan.algorithms(cfg)[0]
    algo, _, template = gan.template_state(cfg, s, method)
    meta = ckpt_lib.load(os.path.join(workdir, method), template).meta
    rng = np.random.default_rng(cfg.generate.seed)
    tok, mask = support_for(style, s.corpus, shots, cfg.data.length, rng)
    key = jax.random.PRNGKey(cfg.generate.seed)
    steps = cfg.eval.steps if method != "pretrain" else 0
    g_params = algo.adapt(meta, (jnp.asarray(tok), jnp.asarray(mask)), key, steps=steps).params["g"]
    toks = gan.sample_tokens(s, g_params, cfg.generate.num, cfg.data.length, jax.random.fold_in(key, 1))
    bos = np.full((len(toks), 1), s.enc.bos, np.int32)
    return write_samples(np.concatenate([bos, toks], 1), s.enc, out, style, f"gan-{method}", shots)
