"""Drawing melodies from trained models: the one sampler per model kind.

`sample_lm` continues a prime with a melody LM (PAD and BOS never drawn);
`sample_gan` runs the generator free with Gumbel-max noise (an exact sample at
temperature 1). Each compiles once per (model, shapes) and is cached, because an
evaluation samples for many styles and methods with the same shapes.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def sample_lm(model, params, prime: np.ndarray, *, num: int, length: int, temperature: float, key,
              pad: int, bos: int, vocab_size: int, positions: np.ndarray | None = None) -> np.ndarray:
    """Autoregressive samples [num, length] continuing `prime` (which starts with BOS).

    positions: the bar-position channel [length] of the melody to draw (a model with a position
    channel reads, at step t, the position of the token it draws, t + 1), or None.
    """
    buf = np.full((num, length), pad, np.int32)
    buf[:, : len(prime)] = prime
    run = _lm_sampler(model, pad, bos, vocab_size, len(prime), length, float(temperature))
    nxt = None
    if positions is not None:
        p = np.asarray(positions, np.int32)
        nxt = jnp.asarray(np.broadcast_to(np.concatenate([p[1:], p[-1:]]), (num, length)))
    return np.asarray(run(params, jnp.asarray(buf), nxt, key))


@functools.lru_cache(maxsize=32)
def _lm_sampler(model, pad: int, bos: int, vocab_size: int, prime_len: int, length: int, temperature: float):
    banned = jnp.zeros(vocab_size).at[pad].set(-jnp.inf).at[bos].set(-jnp.inf)

    @jax.jit
    def run(params, buf, nxt, key):
        def body(t, carry):
            buf, key = carry
            key, sub = jax.random.split(key)
            logits = model.apply(params, buf, nxt)[:, t] / temperature + banned
            return buf.at[:, t + 1].set(jax.random.categorical(sub, logits)), key

        return jax.lax.fori_loop(prime_len - 1, length - 1, body, (buf, key))[0]

    return run


def sample_gan(gen, g_params, *, num: int, length: int, key) -> np.ndarray:
    """Generated melodies as class tokens [num, length] (no BOS)."""
    return np.asarray(_gan_sampler(gen, num, length)(g_params, key))


@functools.lru_cache(maxsize=32)
def _gan_sampler(gen, num: int, length: int):
    @jax.jit
    def run(gp, key):
        kz, kn = jax.random.split(key)
        z = jax.random.normal(kz, (num, gen.z_dim))
        return gen.apply(gp, z, jax.random.gumbel(kn, (num, length, gen.classes))).argmax(-1)

    return run
