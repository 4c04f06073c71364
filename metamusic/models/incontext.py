"""In-context melody model: a Transformer that reads a style's K support tunes as its prompt.

The amortized method squeezes the support tunes into one context vector; this model keeps them
whole and lets every query token attend to them (the way TunesFormer, NotaGen and the
Anticipatory Music Transformer condition, by prompting). It is the amortized method's natural
extreme, and it plugs into the same algorithm: `condition` puts the support windows into the
params pytree's "prompt" collection (`with_prompt`), so adapting to a style is one forward pass
and the query loss is the model's NLL given the prompt. Without a prompt it is a plain causal
Transformer LM (K=0: the joint model of the same run).

The prompt is run once per task, each of its windows attending within itself (it is read, never
predicted); each query window attends causally to itself and, through a gated cross-attention
that starts closed, to every prompt token, with the same layers: started from the joint model it
predicts exactly as that model did and learns how much to read.

Support windows arrive as a tune's consecutive windows, each after the first starting with the
previous one's last token; that repeated token is masked out and BOS marks where a tune begins, so
the prompt is the K tunes one after another, separated by BOS.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from metamusic.errors import MetamusicError
from metamusic.models.melody_lm import _context, _film, register_model

PROMPT = "prompt"  # the params collection that holds the support windows


def with_prompt(params, tokens, mask, pos, *, bos: int, max_windows: int):
    """params with the support windows [S, T] (tokens, mask, bar positions) as the prompt. At most
    `max_windows` windows are kept (the first ones: whole tunes in order), so a large support pool
    cannot blow up attention. Stored as float32, so SGD over the adapted params (a `+finetune` row)
    passes over them with a zero gradient."""
    tokens, mask, pos = (x[:max_windows] for x in (tokens, mask, pos))
    keep = mask.at[:, 0].multiply((tokens[:, 0] == bos).astype(mask.dtype))  # the repeated first token of a window
    f = lambda x: x.astype(jnp.float32)
    return {**params, PROMPT: {"tokens": f(tokens), "mask": f(keep), "pos": f(pos)}}


def _attend(q, k, v, mask):
    """Softmax attention of q [..., T, H, D] over keys and values [..., S, H, D] with a boolean mask
    broadcastable to [..., H, T, S] (the keys may lack q's leading axes: a prompt shared by every window)."""
    scores = jnp.einsum("...thd,...shd->...hts", q, k) * q.shape[-1] ** -0.5
    w = jax.nn.softmax(jnp.where(mask, scores, jnp.finfo(q.dtype).min), axis=-1)
    return jnp.einsum("...hts,...shd->...thd", w, v)


class _Block(nn.Module):
    """One pre-LayerNorm block. A prompt window attends within itself; a query window attends causally to
    itself and, through a gated second attention, to every prompt token, whose keys and values are projected
    once per task, not once per query window (what keeps a prompt of K=10 whole tunes affordable)."""

    dim: int
    heads: int

    @nn.compact
    def __call__(self, x, mask, prompt=None, prompt_mask=None):
        """x [N, T, dim] query tokens (causal `mask` [T, T]); prompt [S, Tw, dim] windows (mask [S, Tw]) or None."""
        hd = self.dim // self.heads
        ln1, ln2 = nn.LayerNorm(name="ln_attn"), nn.LayerNorm(name="ln_mlp")
        proj = {n: nn.DenseGeneral((self.heads, hd), name=n) for n in ("query", "key", "value")}
        out = nn.DenseGeneral(self.dim, axis=(-2, -1), name="out")
        mlp_in, mlp_out = nn.Dense(4 * self.dim, name="mlp_in"), nn.Dense(self.dim, name="mlp_out")
        mlp = lambda h: mlp_out(nn.gelu(mlp_in(h)))
        h = ln1(x)
        q, k, v = (proj[n](h) for n in ("query", "key", "value"))
        # the prompt's term enters through a gate that starts closed (tanh(0) = 0, as Flamingo's cross-attention):
        # a model started from the joint one predicts exactly as it did, and learns how much to read
        gate = jnp.tanh(self.param("prompt_gate", nn.initializers.zeros, (self.dim,)))
        x = x + out(_attend(q, k, v, mask))
        if prompt is not None:
            hp = ln1(prompt)
            qp, kp, vp = (proj[n](hp) for n in ("query", "key", "value"))
            valid = prompt_mask > 0
            within = valid[:, None, :, None] & valid[:, None, None, :]  # [S, 1, Tw, Tw]
            P = kp.shape[0] * kp.shape[1]
            read = _attend(q, kp.reshape((P,) + kp.shape[2:]), vp.reshape((P,) + vp.shape[2:]), valid.reshape(P))
            x = x + gate * out(read)
            prompt = prompt + out(_attend(qp, kp, vp, within))
            prompt = prompt + mlp(ln2(prompt))
        return x + mlp(ln2(x)), prompt


class InContextLM(nn.Module):
    """Pre-LayerNorm causal Transformer over query windows that attends to a prompt of support tunes."""

    vocab_size: int
    dim: int = 128
    layers: int = 3
    heads: int = 4
    max_len: int = 512  # learned positions within a window (query and prompt windows alike)
    bar_positions: int = 0
    context_dim: int = 0  # a learned context vector (as TransformerLM; CAVIA could adapt it); 0: none
    context_output: bool = False
    max_prompt_windows: int = 40  # support windows the prompt holds (K=10 whole tunes of 4 windows)
    reads_prompt = True  # (a class fact, not a field: meta.algorithm=incontext needs it)

    @nn.compact
    def __call__(self, tokens, pos=None):
        """Next-token logits [..., T, vocab] of query windows `tokens` (`pos`: the bar position of the token
        each input predicts, as every melody model reads it), given the prompt where the params hold one."""
        embed = nn.Embed(self.vocab_size, self.dim, name="embed")
        table = self.param("pos", nn.initializers.normal(0.02), (self.max_len, self.dim))
        if self.bar_positions:  # one bar-position embedding for query and prompt (models.metric's names)
            if pos is None:
                raise MetamusicError("this model reads bar positions (data.bar_position=True) but was given none")
            bar_pos = nn.Embed(self.bar_positions, self.dim, name="bar_pos")
            bar_start = nn.Embed(1, self.dim, name="bar_start")(jnp.zeros((1,), jnp.int32))[0]

        def read(tok, p):
            x = embed(tok) + table[: tok.shape[-1]]
            if self.bar_positions:
                p = jnp.clip(p, 0, self.bar_positions - 1)
                x = x + bar_pos(p) + (p == 0).astype(x.dtype)[..., None] * bar_start
            return x

        ctx = _context(self.context_dim)
        x = _film(read(tokens, pos), ctx, self.dim, "context_film")
        mask = nn.make_causal_mask(jnp.ones(tokens.shape, jnp.int32))
        is_prompt = self.param("prompt_type", nn.initializers.normal(0.02), (self.dim,))  # marks prompt tokens
        prompt = pmask = None
        if self.has_variable(PROMPT, "tokens"):
            ptok = self.get_variable(PROMPT, "tokens").astype(jnp.int32)  # [S, Tw]
            ppos = self.get_variable(PROMPT, "pos").astype(jnp.int32)
            ppos = jnp.concatenate([ppos[:, 1:], ppos[:, -1:]], axis=-1)  # each token with its successor's position
            prompt = read(ptok, ppos) + is_prompt  # [S, Tw, dim]
            pmask = self.get_variable(PROMPT, "mask")
        for i in range(self.layers):
            x, prompt = _Block(self.dim, self.heads, name=f"block_{i}")(x, mask, prompt, pmask)
        x = nn.LayerNorm(name="ln_out")(x)
        if self.context_output:
            x = _film(x, ctx, self.dim, "context_film_out")
        return nn.Dense(self.vocab_size, name="head")(x)


register_model("incontext", InContextLM)
