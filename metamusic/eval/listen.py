"""A few generated melodies per meta-test style and method, to TensorBoard as audio and piano rolls.

Numbers say how far a method's samples are from a style; listening says how. After
the few-shot evaluation, each method adapts on K support tunes of every meta-test
style (the same draws for every method) and samples `eval.listen` melodies, logged
under workdir/tb/eval as `<style>/<method>/<i>` audio clips and piano-roll images,
with one real held-out tune of the style beside them (`<style>/real tune`).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from metamusic import audio, progress
from metamusic.data import melody
from metamusic.data.episodes import servable
from metamusic.eval.draws import style_draws


def piano_roll_image(tokens: np.ndarray, enc: melody.EncodingConfig, title: str = "") -> np.ndarray:
    """The piano roll of one token sequence as an RGB image [H, W, 3] uint8."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metamusic.generate import draw_piano_roll

    fig = draw_piano_roll(tokens, enc, title)
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return img


def log_samples(exp, methods: dict, corpus, workdir: str, per_style: int, shots: int) -> int:
    """methods: name -> adapt(support, key) -> params. Logs `per_style` samples of each method for every
    meta-test style; returns how many clips were written (0 on a non-primary process or per_style=0)."""
    if per_style <= 0 or jax.process_index() != 0:
        return 0
    from tensorboardX import SummaryWriter

    cfg, enc = exp.cfg, corpus.enc
    L = cfg.data.length
    test, _ = servable(corpus, corpus.styles_in("test"), 1, 1)  # a clip needs a support and a held-out tune
    # K support tunes, fewer where a style's support pool is smaller (a small user collection)
    support_pool = [int(np.sum((corpus.style_of == corpus.style_index(st)) & (corpus.pool == 0))) for st in test]
    shots = max(1, min([shots] + support_pool))
    draws = style_draws(corpus, test, shots, 1, L, np.random.default_rng([cfg.seed, 6]))
    tb = SummaryWriter(os.path.join(workdir, "tb", "eval"))
    # the first style compiles every method's adaptation and sampler: the ETA reads the styles after it
    bar = progress.Phase("evaluate: listening clips", len(test) * len(methods), bool(cfg.progress),
                         warmup=len(methods))
    n = 0
    try:
        for i, st in enumerate(test):
            support, real = draws[st]
            clips = [("real tune", real[0][0])]
            for name, adapt in methods.items():
                key = jax.random.PRNGKey(cfg.seed + 1000 + i)
                params = adapt(tuple(jnp.asarray(x) for x in support), key)
                gen = np.asarray(exp.sample(params, support, num=per_style, length=L,
                                                     temperature=cfg.eval.temperature, key=jax.random.fold_in(key, 1)))
                clips += [(f"{name}/{j}", g) for j, g in enumerate(gen)]
                bar.advance(1)
            for tag, tokens in clips:
                tokens = np.asarray(tokens)
                tokens = tokens[tokens != enc.pad]
                ns = melody.tokens_to_sequence(tokens, enc)
                tb.add_audio(f"{st}/{tag}", audio.render(ns), 0, sample_rate=audio.SAMPLE_RATE)
                tb.add_image(f"{st}/{tag}", piano_roll_image(tokens, enc, f"{st}: {tag} (K={shots})"), 0,
                             dataformats="HWC")
                n += 1
    finally:
        tb.close()
        bar.close()
    return n
