"""Metric-based few-shot classification heads: relation networks and prototypical networks.

Model-agnostic like the rest of `meta`: each takes functions, not modules.
  embed(params, tokens, mask) -> features [n, C]
  relate(params, class_feats [N, C], query_feats [M, C]) -> scores [M, N] in [0, 1]
An episode has support [N*K, T] (labels 0..N-1, K per class, grouped by class) and
query [N*Q, T]. `HEADS` is the registry of heads by name; each gives the training
loss, class scores for prediction, and scores as probabilities (for the style
scorer). A head trains through `meta.direct` (an episode is a task with no inner loop).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

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


def proto_logits(embed, relate, params, ep, n_way: int, aggregate: str = "mean"):
    """Negative squared Euclidean distances to the class means (`relate` and `aggregate` unused)."""
    s = embed(params, ep.support, ep.support_mask)
    q = embed(params, ep.query, ep.query_mask)
    protos = class_features(s, ep.support_labels, n_way, "mean")
    return -((q[:, None, :] - protos[None]) ** 2).sum(-1)


def proto_loss(embed, relate, params, ep, n_way: int, aggregate: str = "mean"):
    """Snell et al.: cross-entropy over negative squared distances to class means."""
    logits = proto_logits(embed, relate, params, ep, n_way)
    logp = jax.nn.log_softmax(logits)
    loss = -jnp.take_along_axis(logp, ep.query_labels[:, None], -1).mean()
    return loss, {"accuracy": jnp.mean(logits.argmax(-1) == ep.query_labels)}


class Head(NamedTuple):
    """A metric head. Every function takes (embed, relate, params, episode, n_way, aggregate)."""

    loss: Callable  # -> (loss, {"accuracy": ...})
    scores: Callable  # -> [N*Q, N] class scores (argmax = prediction)
    probabilities: Callable  # scores -> [N*Q, N] in [0, 1] (the style scorer's output)


HEADS: dict[str, Head] = {
    "relation": Head(relation_loss, relation_scores, lambda s: s),
    "protonet": Head(proto_loss, proto_logits, jax.nn.softmax),
}


def head_loss(name: str, embed, relate, n_way: int, aggregate: str) -> Callable:
    """loss_fn(params, episode, key) of head `name`, for `meta.direct`."""
    head = HEADS[name]
    return lambda params, ep, key: head.loss(embed, relate, params, ep, n_way, aggregate)
