"""The few-shot style classifier: a shared encoder with the parameters of every head of `meta.episodic`.

One module serves all heads so that every method is the same network trained a different
way: `embed` (the encoder), `relate` (the relation module), `ridge` (the ridge head's three
learned scalars) and `classify` (the linear layer of supervised pretraining).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from metamusic.models.encoders import ENCODERS
from metamusic.errors import MetamusicError

PAIRS = ("concat", "rich")
# relation_prior: what the relation module's score starts from; "residual" is "euclidean" with the module's
# output layer zero at init, so an untrained module scores as the prototypical net's distance does
PRIORS = ("none", "euclidean", "residual")


class FewShotClassifier(nn.Module):
    """`embed(tokens, mask, pos)` gives features; `relate(class_feats, query_feats)` scores pairs in [0, 1].

    Args:
      encoder: "conv" or "transformer"; encoder_kwargs: its fields (bar_positions included).
      relation_hidden: width of the relation module (the paper used 8 on feature maps;
        on pooled vectors a wider MLP helps).
      relation_layers: hidden layers of the relation module (the paper: 2).
      pairs: the relation module's input: "concat" (class and query features, the paper) or
        "rich" (also |class - query| and class * query, so a distance need not be learned).
      relation_prior: "none" (the paper: the score is the module's output) or "euclidean": the
        module's logit is added to minus a learned multiple of the squared distance between class
        and query features, so the module learns what the prototypical net's distance misses
        rather than a distance from scratch.
      ridge: whether the model holds the ridge head's scalars (only runs that train r2d2 do, so a
        run's checkpoints keep the parameter tree it was trained with).
      pretrain_classes: outputs of the supervised pretraining layer (0: none); at least the
        number of meta-train styles (unused outputs are never a label).
      feature_dim: outputs of a linear layer that predicts a window's hand-made features from its
        encoder features (meta.feature_loss; 0: none).
      token_head: whether the model holds a linear layer from the encoder's output at each step to the
        token there (the masked head's prediction of hidden notes; only runs that train it do).
    """

    vocab_size: int
    num_classes: int
    encoder: str = "conv"
    encoder_kwargs: tuple = ()
    relation_hidden: int = 64
    relation_layers: int = 2
    pairs: str = "concat"
    relation_prior: str = "none"
    ridge_head: bool = False
    pretrain_classes: int = 0
    feature_dim: int = 0
    token_head: bool = False

    def setup(self):
        if self.encoder not in ENCODERS:
            raise MetamusicError(f"relation encoder={self.encoder!r}; choose one of {sorted(ENCODERS)}")
        self.enc = ENCODERS[self.encoder](self.vocab_size, self.num_classes, **dict(self.encoder_kwargs))
        for i in range(self.relation_layers):  # rel1, rel2, ...: the names of runs made before this field
            setattr(self, f"rel{i + 1}", nn.Dense(self.relation_hidden))
        zero = self.relation_prior == "residual"
        self.rel_out = nn.Dense(1, kernel_init=nn.initializers.zeros if zero else nn.linear.default_kernel_init)
        if self.relation_prior in ("euclidean", "residual"):  # log of the distance's weight in the relation logit
            self.prior_scale = self.param("prior_scale", lambda k: jnp.array(jnp.log(0.1)))
        if self.ridge_head:  # log lambda, log scale (10: the ridge outputs are ~one-hot, so logits need it), bias
            self.ridge_params = self.param("ridge", lambda k: jnp.array([0.0, jnp.log(10.0), 0.0]))
        if self.pretrain_classes:
            self.pretrain_head = nn.Dense(self.pretrain_classes)
        if self.feature_dim:
            self.feature_head = nn.Dense(self.feature_dim)
        if self.token_head:
            self.token_out = nn.Dense(self.num_classes)

    def embed(self, tokens, mask, pos=None):
        return self.enc(tokens, mask, pos)

    def relate(self, class_feats, query_feats):
        """class_feats [N, C], query_feats [M, C] -> relation scores [M, N] in [0, 1]."""
        n, m, c = class_feats.shape[0], query_feats.shape[0], class_feats.shape[-1]
        cf = jnp.broadcast_to(class_feats[None], (m, n, c))
        qf = jnp.broadcast_to(query_feats[:, None], (m, n, c))
        feats = [cf, qf] if self.pairs == "concat" else [cf, qf, jnp.abs(cf - qf), cf * qf]
        h = jnp.concatenate(feats, -1)
        for i in range(self.relation_layers):
            h = nn.relu(getattr(self, f"rel{i + 1}")(h))
        logit = self.rel_out(h)[..., 0]
        if self.relation_prior in ("euclidean", "residual"):
            logit = logit - jnp.exp(self.prior_scale) * ((cf - qf) ** 2).sum(-1)
        return nn.sigmoid(logit)

    def ridge(self):
        return self.ridge_params[0], self.ridge_params[1], self.ridge_params[2]

    def classify(self, feats):
        return self.pretrain_head(feats)

    def predict_features(self, feats):
        return self.feature_head(feats)

    def token_logits(self, tokens, mask, pos=None):
        """Logits [n, T, num_classes] of the token at every step, from the encoder's output there."""
        return self.token_out(self.enc(tokens, mask, pos, steps=True))

    def __call__(self, tokens, mask, pos=None):  # for init: touches every submodule
        f = self.embed(tokens, mask, pos)
        out = self.relate(f, f).sum()
        if self.ridge_head:
            out += sum(self.ridge())
        if self.pretrain_classes:
            out += self.classify(f).sum()
        if self.feature_dim:
            out += self.predict_features(f).sum()
        if self.token_head:
            out += self.token_logits(tokens, mask, pos).sum()
        return out
