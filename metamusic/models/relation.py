"""Relation network (Sung et al. 2018) and prototypical network heads over a shared encoder."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from metamusic.models.encoders import ENCODERS
from metamusic.errors import MetamusicError


class FewShotClassifier(nn.Module):
    """`embed(tokens, mask)` gives features; `relate(class_feats, query_feats)` scores pairs in [0, 1].

    Args:
      encoder: "conv" or "transformer"; encoder_kwargs: its fields.
      relation_hidden: width of the relation module (the paper used 8 on feature maps;
        on pooled vectors a wider MLP helps).
    """

    vocab_size: int
    num_classes: int
    encoder: str = "conv"
    encoder_kwargs: tuple = ()
    relation_hidden: int = 64

    def setup(self):
        if self.encoder not in ENCODERS:
            raise MetamusicError(f"relation encoder={self.encoder!r}; choose one of {sorted(ENCODERS)}")
        self.enc = ENCODERS[self.encoder](self.vocab_size, self.num_classes, **dict(self.encoder_kwargs))
        self.rel1 = nn.Dense(self.relation_hidden)
        self.rel2 = nn.Dense(self.relation_hidden)
        self.rel_out = nn.Dense(1)

    def embed(self, tokens, mask):
        return self.enc(tokens, mask)

    def relate(self, class_feats, query_feats):
        """class_feats [N, C], query_feats [M, C] -> relation scores [M, N] in [0, 1]."""
        n, m = class_feats.shape[0], query_feats.shape[0]
        pairs = jnp.concatenate([jnp.broadcast_to(class_feats[None], (m, n, class_feats.shape[-1])),
                                 jnp.broadcast_to(query_feats[:, None], (m, n, query_feats.shape[-1]))], -1)
        h = nn.relu(self.rel1(pairs))
        h = nn.relu(self.rel2(h))
        return nn.sigmoid(self.rel_out(h))[..., 0]

    def __call__(self, tokens, mask):  # for init: touches every submodule
        f = self.embed(tokens, mask)
        return self.relate(f, f)
