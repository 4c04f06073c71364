"""The meta-step workload in PyTorch, written the way learn2learn's MAML does it.

Used by `meta_step_bench.py --compare-torch` (install with `pip install -e '.[bench]'`).
learn2learn 0.2.0 does not build on Python 3.11, so this is its algorithm spelled
out: per task, clone the parameters, take `inner_steps` SGD steps with
`torch.autograd.grad(..., create_graph=not first_order)` through `nn.LSTM` (the
fused CPU kernel) or a small Transformer matching the JAX one (`--model=transformer`), evaluate the adapted parameters on the query set, backpropagate
the query loss divided by the meta-batch, loop over tasks; then one Adam step.
Parameters are swapped in with `torch.func.functional_call`, which is what
learn2learn's `clone()`/`update_module()` amount to.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class LSTMLM(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens):
        x, _ = self.lstm(self.embed(tokens))
        return self.head(x)


class Attention(nn.Module):
    """Causal multi-head self-attention written out (PyTorch's fused CPU attention kernel has no
    second derivative, which second-order MAML needs)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.qkv, self.out, self.heads = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim), heads

    def forward(self, x, mask):
        B, T, D = x.shape
        split = lambda t: t.view(B, T, self.heads, D // self.heads).transpose(1, 2)
        q, k, v = map(split, self.qkv(x).split(D, dim=-1))
        a = (q @ k.transpose(-1, -2)) / (D // self.heads) ** 0.5
        a = a.masked_fill(mask, float("-inf")).softmax(-1)
        return self.out((a @ v).transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    """Pre-LayerNorm block as `metamusic.models.melody_lm._Block`: causal self-attention, then a 4x GELU MLP."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.up, self.down = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.attn(h, mask)
        return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))  # flax's nn.gelu is the tanh form


class TransformerLM(nn.Module):
    """The JAX `TransformerLM` (no bar positions, no context): token embedding + learned positions,
    `layers` pre-LN blocks, final LayerNorm, linear head."""

    def __init__(self, vocab: int, dim: int, layers: int, heads: int = 4, max_len: int = 512):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(layers)])
        self.ln, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab)

    def forward(self, tokens):
        T = tokens.shape[1]
        x = self.embed(tokens) + self.pos[:T]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # True: not attended
        for b in self.blocks:
            x = b(x, mask)
        return self.head(self.ln(x))


def lm_loss(model, params, tokens):
    logits = torch.func.functional_call(model, params, (tokens[:, :-1],))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


class MetaStep:
    """One MAML / FOMAML meta-step over a fixed random meta-batch [B, K, T]."""

    def __init__(self, *, vocab=40, embed=64, hidden=256, meta_batch=8, shots=5, queries=5, length=64,
                 inner_steps=5, inner_lr=0.1, outer_lr=1e-3, first_order=False, seed=0, model="lstm", layers=1):
        torch.manual_seed(seed)
        if model == "lstm":
            self.model = LSTMLM(vocab, embed, hidden)
        else:  # hidden is the Transformer's width, as in meta_step_bench.py
            self.model = TransformerLM(vocab, hidden, layers, max_len=max(512, length))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=outer_lr)
        rng = np.random.default_rng(seed)
        self.support = torch.from_numpy(rng.integers(2, vocab - 2, (meta_batch, shots, length)))
        self.query = torch.from_numpy(rng.integers(2, vocab - 2, (meta_batch, queries, length)))
        self.inner_steps, self.inner_lr, self.first_order = inner_steps, inner_lr, first_order
        self.meta_batch = meta_batch

    def __call__(self) -> float:
        self.opt.zero_grad()
        total = 0.0
        for b in range(self.meta_batch):
            params = dict(self.model.named_parameters())
            for _ in range(self.inner_steps):
                loss = lm_loss(self.model, params, self.support[b])
                grads = torch.autograd.grad(loss, list(params.values()), create_graph=not self.first_order)
                params = {k: p - self.inner_lr * g for (k, p), g in zip(params.items(), grads)}
            q = lm_loss(self.model, params, self.query[b]) / self.meta_batch
            q.backward()
            total += float(q.detach())
        self.opt.step()
        return total
