"""Melody language models over the project's tokens (see metamusic.data.melody).

Both models map int tokens [..., T] to next-token logits [..., T, vocab]. The final
projection is a submodule named `head`, which is what ANIL adapts. With
`bar_positions` > 0 each also reads the bar-position channel (`models.metric`): at
input t, the bar position of the step it predicts (t + 1), which is known in advance
from the meter, both in training and when sampling.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from metamusic.models.losses import masked_mean, token_nll
from metamusic.models.metric import add_bar_position
from metamusic.models.recurrent import FastLSTM
from metamusic.errors import MetamusicError

LSTM_IMPLS = ("flax", "fast")


class LSTMLM(nn.Module):
    """Embedding -> stacked LSTM -> linear head (Magenta's MelodyRNN used 2 x 128)."""

    vocab_size: int
    embed_dim: int = 64
    hidden: int = 128
    layers: int = 2
    # "flax": nn.RNN over nn.OptimizedLSTMCell; "fast": models.recurrent.FastLSTM (same parameters
    # and outputs, a faster backward pass on CPU). Checkpoints load into either.
    impl: str = "flax"
    bar_positions: int = 0  # bar-position codes read beside the tokens (0: no position channel)
    context_dim: int = 0  # a learned context vector that FiLM-conditions the inputs (CAVIA adapts it); 0: none
    # True: the context also FiLM-conditions the last layer's outputs (the head's input), so a style can
    # shift the next-token distribution directly, not only through the recurrence
    context_output: bool = False

    @nn.compact
    def __call__(self, tokens, pos=None, carry=None):
        """Logits [..., T, vocab] from a zero state; with `carry` (one (c, h) per layer, `initial_carry`),
        (logits, the carry after the last step): what sampling in linear time carries between steps."""
        if self.impl not in LSTM_IMPLS:
            raise MetamusicError(f"model.lstm.impl={self.impl!r} is not allowed; choose one of {list(LSTM_IMPLS)}")
        x = nn.Embed(self.vocab_size, self.embed_dim, name="embed")(tokens)
        x = _with_positions(x, pos, self.bar_positions, self.embed_dim)
        ctx = _context(self.context_dim)
        x = _film(x, ctx, self.embed_dim, "context_film")
        lead = x.shape[:-2]
        x = x.reshape((-1,) + x.shape[-2:])
        new_carry = []
        for i in range(self.layers):
            if self.impl == "fast":  # named like the cell nn.RNN's creates, so parameters match
                layer = FastLSTM(self.hidden, name=f"OptimizedLSTMCell_{i}")
                out = layer(x) if carry is None else layer(x, carry[i])
            else:
                layer = nn.RNN(nn.OptimizedLSTMCell(self.hidden), name=f"lstm_{i}")
                out = layer(x) if carry is None else layer(x, initial_carry=carry[i], return_carry=True)
            if carry is None:
                x = out
            else:
                new_carry.append(out[0])
                x = out[1]
        x = x.reshape(lead + x.shape[-2:])
        if self.context_output:
            x = _film(x, ctx, self.hidden, "context_film_out")
        logits = nn.Dense(self.vocab_size, name="head")(x)
        return logits if carry is None else (logits, tuple(new_carry))

    def initial_carry(self, batch: int):
        """The zero state for `carry`: one (c, h) pair of [batch, hidden] per layer."""
        z = jnp.zeros((batch, self.hidden), jnp.float32)
        return tuple((z, z) for _ in range(self.layers))


def _context(context_dim: int):
    """The learned context vector [C] (a submodule named `context`, what CAVIA adapts and the amortized
    method sets); None without one."""
    if not context_dim:
        return None
    return nn.Embed(1, context_dim, embedding_init=nn.initializers.zeros, name="context")(jnp.zeros((1,), jnp.int32))[0]


def _film(x, ctx, dim: int, name: str):
    """FiLM of features x [..., dim] by the context: x * (1 + gamma) + beta with [gamma, beta] = Dense(ctx).
    The context starts at zero and the projection's bias at zero, so a fresh context leaves x unchanged."""
    if ctx is None:
        return x
    film = nn.Dense(2 * dim, name=name)(ctx)
    return x * (1.0 + film[:dim]) + film[dim:]


def _with_positions(x, pos, positions: int, dim: int):
    if not positions:
        return x
    if pos is None:
        raise MetamusicError("this model reads bar positions (data.bar_position=True) but was given none")
    return add_bar_position(x, pos, positions, dim)


class _Block(nn.Module):
    dim: int
    heads: int
    decode: bool = False

    @nn.compact
    def __call__(self, x, mask):
        h = nn.LayerNorm()(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=self.dim,
                                                decode=self.decode)(h, h, mask=mask)
        h = nn.LayerNorm()(x)
        h = nn.Dense(4 * self.dim)(h)
        return x + nn.Dense(self.dim)(nn.gelu(h))


class TransformerLM(nn.Module):
    """A small pre-LayerNorm causal Transformer with learned positions."""

    vocab_size: int
    dim: int = 128
    layers: int = 2
    heads: int = 4
    max_len: int = 512
    bar_positions: int = 0  # bar-position codes read beside the tokens (0: no position channel)
    context_dim: int = 0  # a learned context vector that FiLM-conditions the inputs (CAVIA adapts it); 0: none
    context_output: bool = False  # True: the context also FiLM-conditions the head's input (as LSTMLM)
    # True: a key/value cache (the "cache" collection) for sampling one token per call in linear time;
    # initialise it with a full-length input, then feed [N, 1] tokens (models.sampling). Same parameters.
    decode: bool = False

    @nn.compact
    def __call__(self, tokens, pos=None):
        T = tokens.shape[-1]
        x = nn.Embed(self.vocab_size, self.dim, name="embed")(tokens)
        x = _with_positions(x, pos, self.bar_positions, self.dim)
        ctx = _context(self.context_dim)
        x = _film(x, ctx, self.dim, "context_film")
        table = self.param("pos", nn.initializers.normal(0.02), (self.max_len, self.dim))
        mask = nn.make_causal_mask(jnp.ones(tokens.shape, jnp.int32))
        start = 0
        if self.decode:
            cached = self.has_variable("cache", "index")
            index = self.variable("cache", "index", lambda: jnp.array(0, jnp.int32))
            if cached:  # one step: its learned position; the attention cache masks what is not yet drawn
                start, mask = index.value, None
                index.value = index.value + T
        x = x + jax.lax.dynamic_slice_in_dim(table, start, T)
        for i in range(self.layers):
            x = _Block(self.dim, self.heads, self.decode, name=f"block_{i}")(x, mask)
        x = nn.LayerNorm()(x)
        if self.context_output:
            x = _film(x, ctx, self.dim, "context_film_out")
        return nn.Dense(self.vocab_size, name="head")(x)


# name -> a Flax module class with fields (vocab_size, bar_positions, context_dim, context_output, ...) whose
# __call__(tokens [N, T], positions [N, T] or None) returns next-token logits [N, T, vocab_size]; the melody
# experiment fills its other fields from the config section model.<name>, if there is one.
MODELS = {"lstm": LSTMLM, "transformer": TransformerLM}


def register_model(name: str, cls, *, replace: bool = False):
    """Adds a melody model (from a plug-in module or a notebook); model.name=<name> then trains it."""
    if name in MODELS and not replace:
        raise MetamusicError(f"model {name!r} is already registered; pass replace=True to override it")
    MODELS[name] = cls
    return cls


def make_model(name: str, vocab_size: int, **kwargs) -> nn.Module:
    """A model by name ('lstm' or 'transformer'); kwargs are its fields."""
    if name not in MODELS:
        raise MetamusicError(f"model.name={name!r} is not allowed; choose one of {sorted(MODELS)}")
    return MODELS[name](vocab_size=vocab_size, **kwargs)


def lm_loss(model: nn.Module, params, tokens, mask, pos=None):
    """Mean next-token NLL (nats) over real target tokens, and metrics.

    Args:
      tokens: int [N, T]; mask: float [N, T], 1 on real tokens. Position t predicts t+1.
      pos: int [N, T] bar positions of the tokens (read when the model has a position channel).
    Returns:
      (loss, {"nll": loss, "accuracy": ..., "events": number of scored tokens}).
    """
    logits = model.apply(params, tokens[..., :-1], None if pos is None else pos[..., 1:])
    targets, m = tokens[..., 1:], mask[..., 1:]
    loss = masked_mean(token_nll(logits, targets), m)
    acc = masked_mean(logits.argmax(-1) == targets, m)
    return loss, {"nll": loss, "accuracy": acc, "events": m.sum()}
