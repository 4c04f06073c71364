"""Drawing melodies from trained models: the one sampler per model kind.

`sample_lm` continues a prime with a melody LM (PAD and BOS never drawn);
`sample_gan` runs the generator free with Gumbel-max noise (an exact sample at
temperature 1). Each compiles once per (model, shapes) and is cached, because an
evaluation samples for many styles and methods with the same shapes.

Melody LMs are sampled in linear time: the LSTM carries its state from step to step
and the Transformer keeps a key/value cache (`TransformerLM.decode`), so drawing
token t costs one step, not a run over the t tokens before it. `incremental=False`
keeps the quadratic sampler that re-runs the model over the whole buffer at every
step: the same draws from the same key (tested), kept as the reference and for
`benchmarks/adapt_bench.py`'s before/after.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from metamusic.models.melody_lm import LSTMLM, TransformerLM


def sample_lm(model, params, prime: np.ndarray, *, num: int, length: int, temperature: float, key,
              pad: int, bos: int, vocab_size: int, positions: np.ndarray | None = None,
              incremental: bool = True) -> np.ndarray:
    """Autoregressive samples [num, length] continuing `prime` (which starts with BOS).

    positions: the bar-position channel [length] of the melody to draw (a model with a position
    channel reads, at step t, the position of the token it draws, t + 1), or None.
    incremental: carry the model's state (linear time; models without a decoder below fall back
    to re-running); False: re-run the model over the buffer at every step (quadratic).
    """
    buf = np.full((num, length), pad, np.int32)
    buf[:, : len(prime)] = prime
    make = _lm_stepping_sampler if incremental and type(model) in _DECODERS else _lm_sampler
    run = make(model, pad, bos, vocab_size, len(prime), length, float(temperature))
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


def _lstm_decoder(model, params, num: int, length: int):
    """(initial state, step): the LSTM's carry, one token per call."""

    def step(state, tok, pos):
        logits, state = model.apply(params, tok[:, None], None if pos is None else pos[:, None], carry=state)
        return logits[:, 0], state

    return model.initial_carry(num), step


def _transformer_decoder(model, params, num: int, length: int):
    """(initial state, step): the key/value cache of `length` positions, one token per call."""
    dec = model.clone(decode=True)
    pos = jnp.zeros((num, length), jnp.int32) if model.bar_positions else None
    shapes = jax.eval_shape(lambda: dec.init(jax.random.PRNGKey(0), jnp.zeros((num, length), jnp.int32), pos))
    cache = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), shapes["cache"])

    def step(cache, tok, pos):
        logits, new = dec.apply({**params, "cache": cache}, tok[:, None], None if pos is None else pos[:, None],
                                mutable=["cache"])
        return logits[:, 0], new["cache"]

    return cache, step


_DECODERS = {LSTMLM: _lstm_decoder, TransformerLM: _transformer_decoder}  # model class -> its linear-time decoder


@functools.lru_cache(maxsize=32)
def _lm_stepping_sampler(model, pad: int, bos: int, vocab_size: int, prime_len: int, length: int,
                         temperature: float):
    banned = jnp.zeros(vocab_size).at[pad].set(-jnp.inf).at[bos].set(-jnp.inf)
    decoder = _DECODERS[type(model)]

    @jax.jit
    def run(params, buf, nxt, key):
        state, step = decoder(model, params, buf.shape[0], length)
        pos_at = (lambda t: None) if nxt is None else (lambda t: nxt[:, t])

        def prefill(t, state):  # the prime's tokens before its last: read, nothing drawn
            return step(state, buf[:, t], pos_at(t))[1]

        def body(t, carry):  # the same key splits as _lm_sampler, so the same draws
            buf, key, state = carry
            key, sub = jax.random.split(key)
            logits, state = step(state, buf[:, t], pos_at(t))
            return buf.at[:, t + 1].set(jax.random.categorical(sub, logits / temperature + banned)), key, state

        state = jax.lax.fori_loop(0, prime_len - 1, prefill, state)
        return jax.lax.fori_loop(prime_len - 1, length - 1, body, (buf, key, state))[0]

    return run


def sample_gan(gen, g_params, *, num: int, length: int, key, temperature: float = 1.0) -> np.ndarray:
    """Generated melodies as class tokens [num, length] (no BOS); Gumbel-max of logits / temperature."""
    return np.asarray(_gan_sampler(gen, num, length)(g_params, key, jnp.float32(temperature)))


@functools.lru_cache(maxsize=32)
def _gan_sampler(gen, num: int, length: int):
    @jax.jit
    def run(gp, key, temperature):
        kz, kn = jax.random.split(key)
        z = jax.random.normal(kz, (num, gen.z_dim))
        noise = jax.random.gumbel(kn, (num, length, gen.classes))
        return gen.apply(gp, z, noise, temperature=temperature).argmax(-1)

    return run
