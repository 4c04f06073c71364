"""Melody language models over the project's tokens (see metamusic.data.melody).

Both models map int tokens [..., T] to next-token logits [..., T, vocab]. The final
projection is a submodule named `head`, which is what ANIL adapts. With
`bar_positions` > 0 each also reads the bar-position channel (`models.metric`): at
input t, the bar position of the step it predicts (t + 1), which is known in advance
from the meter, both in training and when sampling.
"""

from __future__ import annotations

import flax.linen as nn
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

    @nn.compact
    def __call__(self, tokens, pos=None):
        if self.impl not in LSTM_IMPLS:
            raise MetamusicError(f"model.lstm.impl={self.impl!r} is not allowed; choose one of {list(LSTM_IMPLS)}")
        x = nn.Embed(self.vocab_size, self.embed_dim, name="embed")(tokens)
        x = _with_positions(x, pos, self.bar_positions, self.embed_dim)
        x = _with_context(x, self.context_dim, self.embed_dim)
        lead = x.shape[:-2]
        x = x.reshape((-1,) + x.shape[-2:])
        for i in range(self.layers):
            if self.impl == "fast":  # named like the cell nn.RNN's creates, so parameters match
                x = FastLSTM(self.hidden, name=f"OptimizedLSTMCell_{i}")(x)
            else:
                x = nn.RNN(nn.OptimizedLSTMCell(self.hidden), name=f"lstm_{i}")(x)
        x = x.reshape(lead + x.shape[-2:])
        return nn.Dense(self.vocab_size, name="head")(x)


def _with_context(x, context_dim: int, dim: int):
    """FiLM of the input embeddings by a learned context vector (CAVIA's, which the inner loop adapts):
    x * (1 + gamma) + beta with [gamma, beta] = Dense(context). The context starts at zero and the
    projection's bias at zero, so a fresh context leaves the model unchanged."""
    if not context_dim:
        return x
    ctx = nn.Embed(1, context_dim, embedding_init=nn.initializers.zeros, name="context")(jnp.zeros((1,), jnp.int32))[0]
    film = nn.Dense(2 * dim, name="context_film")(ctx)
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

    @nn.compact
    def __call__(self, x, mask):
        h = nn.LayerNorm()(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=self.dim)(h, h, mask=mask)
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

    @nn.compact
    def __call__(self, tokens, pos=None):
        T = tokens.shape[-1]
        x = nn.Embed(self.vocab_size, self.dim, name="embed")(tokens)
        x = _with_positions(x, pos, self.bar_positions, self.dim)
        x = _with_context(x, self.context_dim, self.dim)
        x = x + self.param("pos", nn.initializers.normal(0.02), (self.max_len, self.dim))[:T]
        mask = nn.make_causal_mask(jnp.ones(tokens.shape, jnp.int32))
        for i in range(self.layers):
            x = _Block(self.dim, self.heads, name=f"block_{i}")(x, mask)
        return nn.Dense(self.vocab_size, name="head")(nn.LayerNorm()(x))


MODELS = {"lstm": LSTMLM, "transformer": TransformerLM}


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
