"""Sequence encoders for style classification: melody tokens [..., T] -> a feature vector.

Masked throughout: padding never reaches a feature. Besides the token itself each
position sees the interval from the previous note (clipped to +-12 semitones) and
whether it is an onset, which makes the features transposition-robust. With
`music_inputs` an onset also sees what the hand-made features of `data.features` count:
its scale degree above the tune's final note, its inter-onset interval and its position
in the bar; with `rhythm_inputs` also the ratio of its inter-onset interval to the previous
one and the onset pattern of its beat (`rhythm_codes`). A masked mean of one-hot embeddings
is a histogram, so the pooled encoder can reach every histogram the feature regression
reads, and learn more on top.
"""

from __future__ import annotations

import math

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


IOI_CODES = 16  # inter-onset intervals of 1..16 steps (longer ones share the last code), as data.features


def music_codes(tokens, mask, num_classes: int, pos=None, positions: int = 0):
    """Per-step codes, 0 where the step is not an onset:
    (scale degree above the tune's final note + 1 in 1..12, inter-onset interval to the next onset
    (the last note: to the tune's end) in 1..IOI_CODES, bar position of the onset + 1 in
    1..positions-1, or 0 without positions)."""
    is_pitch = (tokens >= 2) & (tokens < num_classes) & (mask > 0)
    T = tokens.shape[-1]
    t = jnp.arange(T)
    last = jax.lax.cummax(jnp.where(is_pitch, t, -1), axis=tokens.ndim - 1)[..., -1:]
    final = jnp.take_along_axis(tokens, jnp.maximum(last, 0), axis=-1)
    degree = jnp.where(is_pitch, (tokens - final) % 12 + 1, 0)
    length = mask.sum(-1, keepdims=True).astype(jnp.int32)
    nxt = jax.lax.cummin(jnp.where(is_pitch, t, T), axis=tokens.ndim - 1, reverse=True)
    after = jnp.concatenate([nxt[..., 1:], jnp.full(nxt.shape[:-1] + (1,), T)], axis=-1)
    ioi = jnp.clip(jnp.minimum(after, length) - t, 1, IOI_CODES)
    ioi = jnp.where(is_pitch, ioi, 0)
    if pos is None or not positions:
        at = jnp.zeros_like(tokens)
    else:  # positions - 1 means none (BOS, padding)
        at = jnp.where(is_pitch & (pos >= 0) & (pos < positions - 1), pos + 1, 0)
    return degree, ioi, at


BEAT_STEPS = 4  # a beat pattern spans one quarter at 4 steps per quarter, as data.features
# log2 of the inter-onset ratios a ratio code is the nearest of (1/4 .. 4), as data.features.IOI_RATIOS
IOI_RATIOS = tuple(math.log2(r) for r in (1 / 4, 1 / 3, 1 / 2, 2 / 3, 1, 3 / 2, 2, 3, 4))


def rhythm_codes(tokens, mask, num_classes: int, pos, positions: int):
    """Per-step codes, 0 where the step is not an onset: (the ratio of the onset's inter-onset interval
    (the last note's: to the tune's end, as in `music_codes`) to the previous one's, as the nearest of
    IOI_RATIOS + 1 in 1..9, 0 for the first onset; the onset
    pattern of the beat the onset sits in, + 1 in 1..2**BEAT_STEPS, 0 where a bar line cuts the beat or
    without positions). The same numbers `data.features.rhythm_features` counts, per onset: a dotted
    beat, a triplet and two even quavers differ in the beat code, and the ratio reads the same in
    quavers and in semiquavers."""
    is_pitch = (tokens >= 2) & (tokens < num_classes) & (mask > 0)
    T = tokens.shape[-1]
    t = jnp.arange(T)
    length = mask.sum(-1, keepdims=True).astype(jnp.int32)
    nxt = jax.lax.cummin(jnp.where(is_pitch, t, T), axis=tokens.ndim - 1, reverse=True)
    after = jnp.concatenate([nxt[..., 1:], jnp.full(nxt.shape[:-1] + (1,), T)], axis=-1)
    ioi = jnp.maximum(jnp.minimum(after, length) - t, 1)
    prev_at = jax.lax.cummax(jnp.where(is_pitch, t, -1), axis=tokens.ndim - 1)
    prev = jnp.concatenate([jnp.full(prev_at.shape[:-1] + (1,), -1), prev_at[..., :-1]], axis=-1)
    prev_ioi = jnp.maximum(t - prev, 1)
    r = jnp.log2(ioi / prev_ioi)[..., None] - jnp.asarray(IOI_RATIOS)
    ratio = jnp.where(is_pitch & (prev >= 0), jnp.abs(r).argmin(-1) + 1, 0)
    if pos is None or not positions:
        return ratio, jnp.zeros_like(tokens)
    none = positions - 1  # BOS and padding
    p = jnp.where(mask > 0, pos, none).astype(jnp.int32)
    ahead = lambda x, k, v: jnp.concatenate([x[..., k:], jnp.full(x.shape[:-1] + (k,), v, x.dtype)], axis=-1)
    on = is_pitch.astype(jnp.int32)
    # at each beat start: the pattern of its BEAT_STEPS steps, where no bar line cuts them
    code = sum(ahead(on, k, 0) << (BEAT_STEPS - 1 - k) for k in range(BEAT_STEPS))
    whole = (p < none) & (p % BEAT_STEPS == 0)
    for k in range(1, BEAT_STEPS):
        whole = whole & (ahead(p, k, none) == p + k)
    at_start = jnp.where(whole, code + 1, 0)
    start = jnp.maximum(t - p % BEAT_STEPS, 0)  # the beat start of every step
    beat = jnp.where(is_pitch & (p < none), jnp.take_along_axis(at_start, start, axis=-1), 0)
    return ratio, beat


def tune_view(key, tokens, mask, pos, num_classes: int, max_shift: int, min_keep: float = 0.5):
    """Another view of each tune [n, T] for contrastive training: a random contiguous crop keeping at
    least `min_keep` of its steps (the rest masked) and a random transposition by up to `max_shift`
    semitones (pitches kept in range). Bar positions are unchanged, so the crop keeps its meter."""
    k_len, k_start, k_shift = jax.random.split(key, 3)
    n, T = tokens.shape
    length = mask.sum(-1)
    span = jnp.ceil(jax.random.uniform(k_len, (n,), minval=min_keep, maxval=1.0) * length)
    start = jnp.floor(jax.random.uniform(k_start, (n,)) * (length - span + 1))
    t = jnp.arange(T)
    keep = (t >= start[:, None]) & (t < (start + span)[:, None]) & (mask > 0)
    shift = jax.random.randint(k_shift, (n, 1), -max_shift, max_shift + 1)
    is_pitch = (tokens >= 2) & (tokens < num_classes)
    shifted = jnp.where(is_pitch, jnp.clip(tokens + shift, 2, num_classes - 1), tokens)
    return shifted, keep.astype(mask.dtype), pos


def masked_notes(key, tokens, mask, num_classes: int, rate: float = 0.15):
    """The masked-note view of tunes [n, T] (the masked head, after BERT's masked tokens): each note onset is
    hidden with probability `rate`, its token replaced by the padding token (`num_classes`, an embedding row
    no other input reaches, kept unmasked so the encoder sees that a note is hidden there). Only onsets are
    hidden: a hold step is told by its neighbours, an onset's pitch is what the encoders' features lack.
    Returns (the tokens with the hidden onsets replaced, hidden [n, T] bool)."""
    is_pitch = (tokens >= 2) & (tokens < num_classes) & (mask > 0)
    hidden = is_pitch & (jax.random.uniform(key, tokens.shape) < rate)
    return jnp.where(hidden, num_classes, tokens), hidden


def masked_pool(x, mask):
    """Mean over time of features [..., T, C] where mask [..., T] is 1."""
    m = mask[..., None]
    return (x * m).sum(-2) / jnp.maximum(m.sum(-2), 1.0)


def pooled_features(x, inputs, mask, pool_inputs: bool):
    """The encoder's masked mean over time, and with `pool_inputs` beside it the masked mean of its input
    embeddings: a learned linear map of every histogram the hand-made features count (with music or rhythm
    inputs), handed to the head directly instead of through the layers' normalised residual stream."""
    out = masked_pool(x, mask)
    return jnp.concatenate([out, masked_pool(inputs, mask)], -1) if pool_inputs else out


def embed_inputs(tokens, vocab_size: int, num_classes: int, dim: int, mask=None, pos=None, positions: int = 0,
                 music: bool = False, rhythm: bool = False):
    """Token + interval + onset embeddings, summed; with `music`, also the `music_codes` embeddings
    ("degree", "ioi", "onset_pos"); with `rhythm`, also the `rhythm_codes` embeddings ("ioi_ratio",
    "beat"). Call inside a compact method: the Embed submodules belong to the calling encoder."""
    onset, interval = note_features(tokens, num_classes)
    x = nn.Embed(vocab_size, dim, name="embed")(tokens)
    x = x + nn.Embed(26, dim, name="interval")(interval) + nn.Embed(2, dim, name="onset")(onset)
    if music:
        degree, ioi, at = music_codes(tokens, mask, num_classes, pos, positions)
        x = x + nn.Embed(13, dim, name="degree")(degree) + nn.Embed(IOI_CODES + 1, dim, name="ioi")(ioi)
        if positions:
            x = x + nn.Embed(positions, dim, name="onset_pos")(at)
    if rhythm:
        ratio, beat = rhythm_codes(tokens, mask, num_classes, pos, positions)
        x = x + nn.Embed(len(IOI_RATIOS) + 1, dim, name="ioi_ratio")(ratio)
        if positions:
            x = x + nn.Embed(2 ** BEAT_STEPS + 1, dim, name="beat")(beat)
    return x


class ConvEncoder(nn.Module):
    """Embeddings -> stack of 1-D convolutions (GELU, LayerNorm) -> masked mean over time."""

    vocab_size: int
    num_classes: int
    dim: int = 64
    layers: int = 4
    kernel: int = 5
    bar_positions: int = 0  # bar-position codes read beside the tokens (0: none; models.metric)
    music_inputs: bool = False  # also embed scale degree, inter-onset interval and onset position (music_codes)
    rhythm_inputs: bool = False  # also embed inter-onset ratio and beat pattern (rhythm_codes)
    pool_inputs: bool = False  # also return the masked mean of the input embeddings (features of 2 * dim)

    @nn.compact
    def __call__(self, tokens, mask, pos=None, steps: bool = False):
        """Pooled features [n, C]; with `steps`, the last layer's output at every step [n, T, dim] (the masked
        head predicts hidden notes from it)."""
        x = embed_inputs(tokens, self.vocab_size, self.num_classes, self.dim, mask, pos,
                         self.bar_positions if pos is not None else 0, self.music_inputs, self.rhythm_inputs)
        if self.bar_positions and pos is not None:
            x = add_bar_position(x, pos, self.bar_positions, self.dim)
        # masked before the first convolution too, so no kernel reaches into the padding
        x = x * mask[..., None]
        inputs = x
        for i in range(self.layers):
            h = nn.Conv(self.dim, (self.kernel,), kernel_dilation=(2 ** (i % 3),), name=f"conv_{i}")(x)
            x = nn.LayerNorm(name=f"ln_{i}")(x + nn.gelu(h)) * mask[..., None]
        return x if steps else pooled_features(x, inputs, mask, self.pool_inputs)


class TransformerEncoder(nn.Module):
    """A small bidirectional Transformer with padding masks -> masked mean."""

    vocab_size: int
    num_classes: int
    dim: int = 64
    layers: int = 2
    heads: int = 4
    max_len: int = 512
    bar_positions: int = 0  # bar-position codes read beside the tokens (0: none; models.metric)
    music_inputs: bool = False  # also embed scale degree, inter-onset interval and onset position (music_codes)
    rhythm_inputs: bool = False  # also embed inter-onset ratio and beat pattern (rhythm_codes)
    pool_inputs: bool = False  # also return the masked mean of the input embeddings (features of 2 * dim)

    @nn.compact
    def __call__(self, tokens, mask, pos=None, steps: bool = False):
        """Pooled features [n, C]; with `steps`, the output at every step [n, T, dim]."""
        T = tokens.shape[-1]
        x = embed_inputs(tokens, self.vocab_size, self.num_classes, self.dim, mask, pos,
                         self.bar_positions if pos is not None else 0, self.music_inputs, self.rhythm_inputs)
        if self.bar_positions and pos is not None:
            x = add_bar_position(x, pos, self.bar_positions, self.dim)
        inputs = x * mask[..., None]
        x = x + self.param("pos", nn.initializers.normal(0.02), (self.max_len, self.dim))[:T]
        attn_mask = nn.make_attention_mask(mask > 0, mask > 0)
        for i in range(self.layers):
            h = nn.LayerNorm()(x)
            x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads)(h, h, mask=attn_mask)
            h = nn.LayerNorm()(x)
            x = x + nn.Dense(self.dim)(nn.gelu(nn.Dense(2 * self.dim)(h)))
        x = nn.LayerNorm()(x)
        return x * mask[..., None] if steps else pooled_features(x, inputs, mask, self.pool_inputs)


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
