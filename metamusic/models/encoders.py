"""Sequence encoders for style classification: melody tokens [..., T] -> a feature vector.

Masked throughout: padding never reaches a feature. Besides the token itself each
position sees the interval from the previous note (clipped to +-12 semitones) and
whether it is an onset, which makes the features transposition-robust.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from metamusic.models.metric import add_bar_position


def note_features(tokens, num_classes: int):
    """(onset flag, interval to the previous note in -12..12 + 13 offset; 0 where none)."""
    is_pitch = (tokens >= 2) & (tokens < num_classes)
    T = tokens.shape[-1]
    idx = jnp.where(is_pitch, jnp.arange(T), -1)
    last = jax.lax.cummax(idx, axis=idx.ndim - 1)  # index of the latest pitch at or before t
    prev = jnp.concatenate([jnp.full(last.shape[:-1] + (1,), -1), last[..., :-1]], axis=-1)
    prev_tok = jnp.take_along_axis(tokens, jnp.maximum(prev, 0), axis=-1)
    interval = jnp.clip(tokens - prev_tok, -12, 12) + 13
    interval = jnp.where(is_pitch & (prev >= 0), interval, 0)
    return is_pitch.astype(jnp.int32), interval


def masked_pool(x, mask):
    """Mean over time of features [..., T, C] where mask [..., T] is 1."""
    m = mask[..., None]
    return (x * m).sum(-2) / jnp.maximum(m.sum(-2), 1.0)


def embed_inputs(tokens, vocab_size: int, num_classes: int, dim: int):
    """Token + interval + onset embeddings, summed. Call inside a compact method: the three
    Embed submodules ("embed", "interval", "onset") belong to the calling encoder."""
    onset, interval = note_features(tokens, num_classes)
    x = nn.Embed(vocab_size, dim, name="embed")(tokens)
    return x + nn.Embed(26, dim, name="interval")(interval) + nn.Embed(2, dim, name="onset")(onset)


class ConvEncoder(nn.Module):
    """Embeddings -> stack of 1-D convolutions (GELU, LayerNorm) -> masked mean over time."""

    vocab_size: int
    num_classes: int
    dim: int = 64
    layers: int = 4
    kernel: int = 5
    bar_positions: int = 0  # bar-position codes read beside the tokens (0: none; models.metric)

    @nn.compact
    def __call__(self, tokens, mask, pos=None):
        x = embed_inputs(tokens, self.vocab_size, self.num_classes, self.dim)
        if self.bar_positions and pos is not None:
            x = add_bar_position(x, pos, self.bar_positions, self.dim)
        # masked before the first convolution too, so no kernel reaches into the padding
        x = x * mask[..., None]
        for i in range(self.layers):
            h = nn.Conv(self.dim, (self.kernel,), kernel_dilation=(2 ** (i % 3),), name=f"conv_{i}")(x)
            x = nn.LayerNorm(name=f"ln_{i}")(x + nn.gelu(h)) * mask[..., None]
        return masked_pool(x, mask)


class TransformerEncoder(nn.Module):
    """A small bidirectional Transformer with padding masks -> masked mean."""

    vocab_size: int
    num_classes: int
    dim: int = 64
    layers: int = 2
    heads: int = 4
    max_len: int = 512
    bar_positions: int = 0  # bar-position codes read beside the tokens (0: none; models.metric)

    @nn.compact
    def __call__(self, tokens, mask, pos=None):
        T = tokens.shape[-1]
        x = embed_inputs(tokens, self.vocab_size, self.num_classes, self.dim)
        if self.bar_positions and pos is not None:
            x = add_bar_position(x, pos, self.bar_positions, self.dim)
        x = x + self.param("pos", nn.initializers.normal(0.02), (self.max_len, self.dim))[:T]
        attn_mask = nn.make_attention_mask(mask > 0, mask > 0)
        for i in range(self.layers):
            h = nn.LayerNorm()(x)
            x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads)(h, h, mask=attn_mask)
            h = nn.LayerNorm()(x)
            x = x + nn.Dense(self.dim)(nn.gelu(nn.Dense(2 * self.dim)(h)))
        return masked_pool(nn.LayerNorm()(x), mask)


class SupportEncoder(nn.Module):
    """K support windows [..., N, T] -> one style embedding [..., out_dim]: a ConvEncoder per window,
    pooled over the windows weighted by their real tokens (whole tunes weigh by length), then a
    small MLP. The amortized melody method's context comes from it."""

    vocab_size: int
    num_classes: int
    out_dim: int
    dim: int = 64
    layers: int = 3
    bar_positions: int = 0

    @nn.compact
    def __call__(self, tokens, mask, pos=None):
        f = ConvEncoder(self.vocab_size, self.num_classes, self.dim, self.layers,
                        bar_positions=self.bar_positions, name="windows")(tokens, mask, pos)
        w = mask.sum(-1)[..., None]
        pooled = (f * w).sum(-2) / jnp.maximum(w.sum(-2), 1.0)
        h = nn.gelu(nn.Dense(self.dim, name="mlp")(pooled))
        return nn.Dense(self.out_dim, name="out")(h)


ENCODERS = {"conv": ConvEncoder, "transformer": TransformerEncoder}
