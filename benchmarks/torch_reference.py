"""The meta-step workload in PyTorch, written the way learn2learn's MAML does it.

Used by `meta_step_bench.py --compare-torch` (install with `pip install -e '.[bench]'`).
learn2learn 0.2.0 does not build on Python 3.11, so this is its algorithm spelled
out: per task, clone the parameters, take `inner_steps` SGD steps with
`torch.autograd.grad(..., create_graph=not first_order)` through `nn.LSTM` (the
fused CPU kernel), evaluate the adapted parameters on the query set, backpropagate
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


def lm_loss(model, params, tokens):
    logits = torch.func.functional_call(model, params, (tokens[:, :-1],))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


class MetaStep:
    """One MAML / FOMAML meta-step over a fixed random meta-batch [B, K, T]."""

    def __init__(self, *, vocab=40, embed=64, hidden=256, meta_batch=8, shots=5, queries=5, length=64,
                 inner_steps=5, inner_lr=0.1, outer_lr=1e-3, first_order=False, seed=0):
        torch.manual_seed(seed)
        self.model = LSTMLM(vocab, embed, hidden)
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
