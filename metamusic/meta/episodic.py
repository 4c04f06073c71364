"""Few-shot classification heads over a shared encoder: metric, ridge and pretrained-linear heads.

Model-agnostic like the rest of `meta`: each head takes the model's functions (`Parts`),
not modules:
  embed(params, tokens, mask, pos) -> features [n, C]
  relate(params, class_feats [N, C], query_feats [M, C]) -> scores [M, N] in [0, 1]
  ridge(params) -> (log_lambda, log_scale, bias) scalars of the ridge head
  classify(params, feats [n, C]) -> logits over the pretraining classes
  augment(key, tokens, mask, pos) -> (tokens, mask, pos) of another view of the same tunes
  features(params, feats [n, C]) -> predicted hand-made features [n, D] (the auxiliary feature loss)
  hide(key, tokens, mask) -> (tokens with some notes hidden, hidden [n, T] bool) (the masked head)
  token_logits(params, tokens, mask, pos) -> logits [n, T, V] of the token at every step (the masked head)
An episode has support [N*K, T] (labels 0..N-1, K per class, grouped by class) and
query [N*Q, T]. `HEADS` is the registry of heads by name; each gives the training
loss, class scores for prediction, and scores as probabilities (for the style
scorer). A head trains through `meta.direct` (an episode is a task with no inner loop).

  relation  Sung et al. 2018: a learned relation module over (class, query) pairs, MSE to one-hot.
  protonet  Snell et al. 2017: negative squared distance to the class means.
  r2d2      Bertinetto et al. 2019: ridge regression from support features to one-hot labels,
            solved in closed form per episode (Woodbury form, an N*K x N*K solve), so the
            encoder is meta-trained through the solver.
  pretrain  RFS (Tian et al. 2020): the encoder is trained by plain supervised classification
            over the meta-train styles (its training episodes' `classes` hold global style slots,
            see `pretrain_loss`); at test time a logistic regression is fitted on the support
            features of each episode. `cosine_scores` is the Baseline++/SimpleShot variant.
  contrastive  SimCLR (Chen et al. 2020) on tunes: two random views of every tune of the batch
            (`Parts.augment`: a crop and a transposition) must find each other among all views;
            no labels are read. Scored like `pretrain`, by a logistic regression per episode.
  masked    masked notes (after BERT's masked tokens, Devlin et al. 2019): some note onsets of every
            tune of the batch are hidden (`Parts.hide`) and predicted from the encoder's output at
            their steps; no labels are read. Its task asks for the pitch a tune's context implies,
            what a linear probe finds least of in the supervised encoders. Scored like `pretrain`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

AGGREGATES = ("sum", "mean")


class Parts(NamedTuple):
    embed: Callable
    relate: Callable
    ridge: Callable = None
    classify: Callable = None
    augment: Callable = None  # (key, tokens, mask, pos) -> another view of the same tunes (the contrastive head)
    features: Callable = None  # (params, feats) -> predicted hand-made features (`with_feature_loss`)
    hide: Callable = None  # (key, tokens, mask) -> (tokens with notes hidden, hidden [n, T]) (the masked head)
    token_logits: Callable = None  # (params, tokens, mask, pos) -> logits [n, T, V] per step (the masked head)


def class_features(feats, labels, n_way: int, aggregate: str):
    """Support features [N*K, C] -> per-class features [N, C], summed or averaged over shots."""
    onehot = jax.nn.one_hot(labels, n_way)  # [N*K, N]
    total = onehot.T @ feats
    return total if aggregate == "sum" else total / jnp.maximum(onehot.sum(0)[:, None], 1.0)


def episode_features(parts: Parts, params, ep):
    """(support features [N*K, C], query features [N*Q, C])."""
    return (parts.embed(params, ep.support, ep.support_mask, ep.support_pos),
            parts.embed(params, ep.query, ep.query_mask, ep.query_pos))


def _xent(logits, labels):
    logp = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(logp, labels[:, None], -1).mean()


def _logit_loss(scores_fn):
    def loss(parts, params, ep, n_way, aggregate):
        logits = scores_fn(parts, params, ep, n_way, aggregate)
        return _xent(logits, ep.query_labels), {"accuracy": jnp.mean(logits.argmax(-1) == ep.query_labels)}
    return loss


def relation_scores(parts: Parts, params, ep, n_way: int, aggregate: str = "sum"):
    s, q = episode_features(parts, params, ep)
    return parts.relate(params, class_features(s, ep.support_labels, n_way, aggregate), q)


def relation_loss(parts: Parts, params, ep, n_way: int, aggregate: str = "sum"):
    """Sung et al.: MSE between relation scores and one-hot targets."""
    scores = relation_scores(parts, params, ep, n_way, aggregate)
    loss = jnp.mean((scores - jax.nn.one_hot(ep.query_labels, n_way)) ** 2)
    return loss, {"accuracy": jnp.mean(scores.argmax(-1) == ep.query_labels)}


def proto_logits(parts: Parts, params, ep, n_way: int, aggregate: str = "mean"):
    """Negative squared Euclidean distances to the class means (`aggregate` unused)."""
    s, q = episode_features(parts, params, ep)
    protos = class_features(s, ep.support_labels, n_way, "mean")
    return -((q[:, None, :] - protos[None]) ** 2).sum(-1)


def ridge_solve(x, y, lam):
    """Ridge weights W [C, N] = x^T (x x^T + lam I)^-1 y for x [n, C], y [n, N]: the Woodbury form,
    an n x n system (n = N*K support tunes, far fewer than C features)."""
    gram = x @ x.T + lam * jnp.eye(x.shape[0], dtype=x.dtype)
    return x.T @ jnp.linalg.solve(gram, y)


def ridge_logits(parts: Parts, params, ep, n_way: int, aggregate: str = "mean"):
    """R2D2: query logits scale * (q W) + bias, W the closed-form ridge fit of one-hot support labels."""
    log_lam, log_scale, bias = parts.ridge(params)
    s, q = episode_features(parts, params, ep)
    w = ridge_solve(s, jax.nn.one_hot(ep.support_labels, n_way), jnp.exp(log_lam))
    return jnp.exp(log_scale) * (q @ w) + bias


def normalize(f):
    return f / jnp.maximum(jnp.linalg.norm(f, axis=-1, keepdims=True), 1e-6)


def logreg_fit(x, labels, n_way: int, *, steps: int = 100, lr: float = 1.0, l2: float = 1e-3, scale: float = 10.0):
    """Multinomial logistic regression on L2-normalised features [n, C] (times `scale`), fitted by
    `steps` of full-batch gradient descent from zero; returns (W [C, N], b [N]). A strictly convex
    problem, so the fit does not depend on a seed."""
    x = normalize(x) * scale
    y = jax.nn.one_hot(labels, n_way)

    def grad(wb):
        w, b = wb
        p = jax.nn.softmax(x @ w + b)
        g = (p - y) / x.shape[0]
        return x.T @ g + l2 * w, g.sum(0)

    def body(_, wb):
        gw, gb = grad(wb)
        return wb[0] - lr * gw, wb[1] - lr * gb

    w0 = (jnp.zeros((x.shape[1], n_way), x.dtype), jnp.zeros((n_way,), x.dtype))
    return jax.lax.fori_loop(0, steps, body, w0)


def logreg_scores(parts: Parts, params, ep, n_way: int, aggregate: str = "mean", scale: float = 10.0):
    """RFS: logistic regression fitted on the support features, applied to the query features."""
    s, q = episode_features(parts, params, ep)
    w, b = logreg_fit(s, ep.support_labels, n_way, scale=scale)
    return (normalize(q) * scale) @ w + b


def cosine_scores(parts: Parts, params, ep, n_way: int, aggregate: str = "mean", scale: float = 10.0):
    """Baseline++ / SimpleShot at test time: scaled cosine similarity to the normalised class means."""
    s, q = episode_features(parts, params, ep)
    protos = normalize(class_features(normalize(s), ep.support_labels, n_way, "mean"))
    return scale * normalize(q) @ protos.T


def finetune_scores(parts: Parts, params, ep, n_way: int, aggregate: str = "mean", *, steps: int = 10,
                    lr: float = 1e-4, scale: float = 10.0, unroll: bool = True):
    """Fine-tuning the pretrained encoder on the support set: a linear head started from the logistic
    regression of `logreg_scores`, then `steps` Adam steps on encoder and head together (support
    cross-entropy), scored on the query. The pretraining layer is not used. The evaluation's rows pass
    `eval.finetune_lr` as `lr`.

    The Adam steps are unrolled (`unroll=False`, a while loop, is kept for benchmarks/finetune_rows_bench.py):
    XLA:CPU ran the encoder's convolutions many times slower inside a while loop's body than as
    straight-line code."""
    import optax

    s = parts.embed(params, ep.support, ep.support_mask, ep.support_pos)
    w0, b0 = logreg_fit(jax.lax.stop_gradient(s), ep.support_labels, n_way, scale=scale)

    def loss(theta):
        p, w, b = theta
        f = normalize(parts.embed(p, ep.support, ep.support_mask, ep.support_pos)) * scale
        return _xent(f @ w + b, ep.support_labels)

    tx = optax.adam(lr)
    theta = (params, w0, b0)

    def body(carry, _):
        theta, opt = carry
        g = jax.grad(loss)(theta)
        upd, opt = tx.update(g, opt, theta)
        return (optax.apply_updates(theta, upd), opt), None

    (theta, _), _ = jax.lax.scan(body, (theta, tx.init(theta)), None, length=steps,
                                  unroll=max(steps, 1) if unroll else 1)
    p, w, b = theta
    q = normalize(parts.embed(p, ep.query, ep.query_mask, ep.query_pos)) * scale
    return q @ w + b


def contrastive_loss(parts: Parts, params, ep, n_way: int, aggregate: str = "mean", *, key,
                     temperature: float = 0.1):
    """NT-Xent over two views of every tune of the episode (support and query alike, labels unused):
    each view's positive is the other view of its tune, every other view is a negative."""
    tokens = jnp.concatenate([ep.support, ep.query])
    mask = jnp.concatenate([ep.support_mask, ep.query_mask])
    pos = jnp.concatenate([ep.support_pos, ep.query_pos])
    k1, k2 = jax.random.split(key)
    z = jnp.concatenate([normalize(parts.embed(params, *parts.augment(k, tokens, mask, pos))) for k in (k1, k2)])
    n = tokens.shape[0]
    sim = (z @ z.T) / temperature - 1e9 * jnp.eye(2 * n, dtype=z.dtype)
    targets = jnp.concatenate([jnp.arange(n) + n, jnp.arange(n)])
    return _xent(sim, targets), {"accuracy": jnp.mean(sim.argmax(-1) == targets)}


def masked_loss(parts: Parts, params, ep, n_way: int, aggregate: str = "mean", *, key):
    """Cross-entropy of every hidden note's token, predicted from the encoder's output at its step, over the
    tunes of the episode (support and query alike, labels unused); accuracy: the share of hidden notes whose
    token is the most likely."""
    tokens = jnp.concatenate([ep.support, ep.query])
    mask = jnp.concatenate([ep.support_mask, ep.query_mask])
    pos = jnp.concatenate([ep.support_pos, ep.query_pos])
    shown, hidden = parts.hide(key, tokens, mask)
    logits = parts.token_logits(params, shown, mask, pos)
    nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[..., None].astype(jnp.int32), -1)[..., 0]
    w = hidden.astype(logits.dtype)
    count = jnp.maximum(w.sum(), 1.0)
    return (nll * w).sum() / count, {"accuracy": ((logits.argmax(-1) == tokens) * w).sum() / count}


def pretrain_loss(parts: Parts, params, ep, n_way: int, aggregate: str = "mean"):
    """Supervised classification of every tune of the batch over the pretraining classes.

    The episode's `classes` hold each label's global class (a meta-train style slot); support and
    query tunes are all training examples."""
    s, q = episode_features(parts, params, ep)
    feats = jnp.concatenate([s, q])
    labels = jnp.take(ep.classes, jnp.concatenate([ep.support_labels, ep.query_labels]))
    logits = parts.classify(params, feats)
    return _xent(logits, labels), {"accuracy": jnp.mean(logits.argmax(-1) == labels)}


class Head(NamedTuple):
    """A trainable head. Every function takes (parts, params, episode, n_way, aggregate)."""

    loss: Callable  # -> (loss, {"accuracy": ...})
    scores: Callable  # -> [N*Q, N] class scores (argmax = prediction)
    probabilities: Callable  # scores -> [N*Q, N] in [0, 1] (the style scorer's output)
    # trained on global meta-train style labels (a classifier over model.pretrain_classes), not episode labels
    global_labels: bool = False
    ridge: bool = False  # reads the model's ridge-regression head (its learned scale and bias)
    pretraining: bool = False  # trained without episode labels; meta.init never starts it from another head's encoder
    keyed: bool = False  # the loss takes the step's PRNG key (random views)
    token_head: bool = False  # reads the model's per-step token layer (`Parts.token_logits`)


HEADS: dict[str, Head] = {
    "relation": Head(relation_loss, relation_scores, lambda s: s),
    "protonet": Head(_logit_loss(proto_logits), proto_logits, jax.nn.softmax),
    "r2d2": Head(_logit_loss(ridge_logits), ridge_logits, jax.nn.softmax, ridge=True),
    "pretrain": Head(pretrain_loss, logreg_scores, jax.nn.softmax, global_labels=True, pretraining=True),
    "contrastive": Head(contrastive_loss, logreg_scores, jax.nn.softmax, pretraining=True, keyed=True),
    "masked": Head(masked_loss, logreg_scores, jax.nn.softmax, pretraining=True, keyed=True, token_head=True),
}
# The head every other classification row is paired against (same episodes, paired differences).
REFERENCE = "protonet"


def pretraining_heads(names) -> tuple:
    """The heads among `names` trained on global style labels (`Head.global_labels`)."""
    return tuple(n for n in names if n in HEADS and HEADS[n].global_labels)

# Further ways to classify an episode with a trained method's encoder, evaluated beside its own
# head: method -> {row name: scores function}.
EXTRA_SCORES: dict[str, dict[str, Callable]] = {
    "pretrain": {"pretrain+cosine": cosine_scores, "pretrain+finetune": finetune_scores},
    # the relation network's encoder with a fixed distance instead of its learned comparison: the paired
    # difference to these rows is what the relation module itself adds
    "relation": {"relation+euclidean": proto_logits, "relation+cosine": cosine_scores},
    "contrastive": {"contrastive+cosine": cosine_scores, "contrastive+finetune": finetune_scores},
    "masked": {"masked+cosine": cosine_scores, "masked+finetune": finetune_scores},
}
# Rows that cost an inner loop per episode: evaluated on the first eval.finetune_episodes episodes only.
COSTLY = ("pretrain+finetune", "contrastive+finetune", "masked+finetune")


def with_feature_loss(make_loss: Callable, parts: Parts, weight: float) -> Callable:
    """The loss `make_loss(parts)` builds, plus `weight` times the mean squared error of a linear prediction
    of every window's standardised hand-made features from its encoder features (episodes with
    `support_target` and `query_target`, `data.episodes.FeatureEpisodes`). The prototypical net's own loss
    never asks the encoder for the pitch-class, interval and tonal histograms the hand-made features hold,
    and a linear probe finds little of them in its features (benchmarks/feature_probe.py); this target asks
    for them.

    The head and the target share one pass of the encoder: the head is built on parts whose `embed`
    returns the features already computed for this episode's support and query (any other tokens, such as
    the contrastive head's random views, are encoded as usual). Encoding twice would also run the
    encoder's backward pass twice (benchmarks/feature_loss_bench.py)."""
    def loss(params, ep, key):
        s, q = episode_features(parts, params, ep)
        known = {id(ep.support): s, id(ep.query): q}

        def embed(p, tokens, mask, pos):
            if p is params and id(tokens) in known:
                return known[id(tokens)]
            return parts.embed(p, tokens, mask, pos)
        value, aux = make_loss(parts._replace(embed=embed))(params, ep, key)
        err = 0.5 * (jnp.mean((parts.features(params, s) - ep.support_target) ** 2)
                     + jnp.mean((parts.features(params, q) - ep.query_target) ** 2))
        return value + weight * err, {**aux, "feature_mse": err}
    return loss


def head_loss(name: str, parts: Parts, n_way: int, aggregate: str) -> Callable:
    """loss_fn(params, episode, key) of head `name`, for `meta.direct`."""
    head = HEADS[name]
    if head.keyed:
        return lambda params, ep, key: head.loss(parts, params, ep, n_way, aggregate, key=key)
    return lambda params, ep, key: head.loss(parts, params, ep, n_way, aggregate)
