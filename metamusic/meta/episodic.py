"""Metric-based few-shot classification losses: relation networks and prototypical networks.

Model-agnostic like the rest of `meta`: each takes functions, not modules.
  embed(params, tokens, mask) -> features [n, C]
  relate(params, class_feats [N, C], query_feats [M, C]) -> scores [M, N] in [0, 1]
An episode has support [N*K, T] (labels 0..N-1, K per class, grouped by class) and
query [N*Q, T]. `make(name, ...)` wraps a loss as an `Algorithm` whose "task" is
one episode, so relation nets train in the same loop as the MAML family.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from metamusic.meta.algorithm import Algorithm

AGGREGATES = ("sum", "mean")


def class_features(feats, labels, n_way: int, aggregate: str):
    """Support features [N*K, C] -> per-class features [N, C], summed or averaged over shots."""
    onehot = jax.nn.one_hot(labels, n_way)  # [N*K, N]
    total = onehot.T @ feats
    return total if aggregate == "sum" else total / jnp.maximum(onehot.sum(0)[:, None], 1.0)


def relation_scores(embed, relate, params, ep, n_way: int, aggregate: str = "sum"):
    s = embed(params, ep.support, ep.support_mask)
    q = embed(params, ep.query, ep.query_mask)
    return relate(params, class_features(s, ep.support_labels, n_way, aggregate), q)


def relation_loss(embed, relate, params, ep, n_way: int, aggregate: str = "sum"):
    """Sung et al.: MSE between relation scores and one-hot targets."""
    scores = relation_scores(embed, relate, params, ep, n_way, aggregate)
    target = jax.nn.one_hot(ep.query_labels, n_way)
    loss = jnp.mean((scores - target) ** 2)
    acc = jnp.mean(scores.argmax(-1) == ep.query_labels)
    return loss, {"accuracy": acc}


def proto_logits(embed, params, ep, n_way: int):
    s = embed(params, ep.support, ep.support_mask)
    q = embed(params, ep.query, ep.query_mask)
    protos = class_features(s, ep.support_labels, n_way, "mean")
    return -((q[:, None, :] - protos[None]) ** 2).sum(-1)  # negative squared Euclidean distance


def proto_loss(embed, params, ep, n_way: int):
    """Snell et al.: cross-entropy over negative squared distances to class means."""
    logits = proto_logits(embed, params, ep, n_way)
    logp = jax.nn.log_softmax(logits)
    loss = -jnp.take_along_axis(logp, ep.query_labels[:, None], -1).mean()
    return loss, {"accuracy": jnp.mean(logits.argmax(-1) == ep.query_labels)}


def make(name: str, embed, relate, n_way: int, aggregate: str = "sum") -> Algorithm:
    """'relation' or 'protonet' as an Algorithm over episodes (no inner loop)."""
    if name == "relation":
        loss = lambda p, ep: relation_loss(embed, relate, p, ep, n_way, aggregate)
    elif name == "protonet":
        loss = lambda p, ep: proto_loss(embed, p, ep, n_way)
    else:
        raise ValueError(f"relation.method={name!r}; choose 'relation' or 'protonet'")

    def task_grad(meta, ep, key, outer_step, phase):
        (value, aux), g = jax.value_and_grad(lambda m: loss(m["params"], ep), has_aux=True)(meta)
        return g, {"loss": value, "train/accuracy": aux["accuracy"]}

    def no_adapt(*a, **k):
        raise NotImplementedError("metric-based methods do not adapt weights")

    return Algorithm(name, lambda params: {"params": params}, task_grad, no_adapt)
