"""Few-shot style classification: a sequence encoder with a metric head, trained on N-way K-shot episodes.

Methods are the heads of `meta.episodic.HEADS` named in `meta.algorithm` (relation
network, prototypical network, R2D2 ridge head, supervised pretraining with a logistic
regression fitted per episode); an episode is a task with no inner loop (`meta.direct`),
so they train in the same loop as everything else. Examples are whole tunes up to
`data.length` tokens (in evaluation `eval.length`) with their bar positions (`data.bar_position`). Built without a
corpus (encoding from the config) when only scoring files (`StyleScorer`, classify).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metamusic.data import EpisodeSampler, features, step_rng
from metamusic.data.episodes import FeatureEpisodes
from metamusic.errors import MetamusicError, check_choice, check_range
from metamusic.eval.chunked import map_chunks
from metamusic.experiments import base, inputs, optim, validation
from metamusic.experiments.family import Family
from metamusic.meta import direct, episodic
from metamusic.models import ENCODERS
from metamusic.models.encoders import TransformerEncoder, masked_notes, tune_view
from metamusic.models.relation import PAIRS, PRIORS, FewShotClassifier


class ClassifyParts(NamedTuple):
    """What the classification evaluation and the style scorer read of an experiment."""

    heads: episodic.Parts  # the model's functions the heads take (embed, relate, ridge, classify)
    scores: Callable  # (method or extra row, params, episode, ways) -> class scores [N*Q, N]
    probabilities: Callable  # (method, params, episode, ways) -> scores in [0, 1]
    predictor: Callable  # (method, ways) -> jit(params, episodes) -> predicted labels
    feature_predictor: Callable  # (method, ways) -> the same on encoder features computed once


# model.inputs: what the encoder embeds per step (models.encoders.embed_inputs); "rhythm" is "music" and
# the rhythm codes (inter-onset ratio, beat pattern)
INPUTS = ("notes", "music", "rhythm")
# model.pool: the encoder's features are the mean of its output ("output"), or that and the mean of its input
# embeddings side by side ("output+inputs", models.encoders.pooled_features)
POOLS = ("output", "output+inputs")


def validate(cfg) -> None:
    validation.validate_loop(cfg)
    validation.validate_data(cfg)
    validation.validate_optim(cfg)
    check_range("data.ways", cfg.data.ways, 2)
    if cfg.data.get("train_ways", 0):
        check_range("data.train_ways", cfg.data.train_ways, 2)
    check_choice("model.encoder", cfg.model.encoder, ENCODERS)
    check_choice("model.inputs", cfg.model.get("inputs", "notes"), INPUTS)
    check_choice("model.pool", cfg.model.get("pool", "output"), POOLS)
    for f, v in cfg.model.conv.items():
        check_range(f"model.conv.{f}", v, 1)
    for f, v in cfg.model.transformer.items():
        check_range(f"model.transformer.{f}", v, 1)
    check_range("model.relation_hidden", cfg.model.relation_hidden, 1)
    check_range("model.relation_layers", cfg.model.get("relation_layers", 2), 1)
    check_choice("model.pairs", cfg.model.get("pairs", "concat"), PAIRS)
    check_choice("model.relation_prior", cfg.model.get("relation_prior", "none"), PRIORS)
    check_range("model.pretrain_classes", cfg.model.get("pretrain_classes", 64), 2)
    check_choice("model.aggregate", cfg.model.aggregate, episodic.AGGREGATES)
    validation.algorithm_names(cfg, episodic.HEADS)
    check_range("eval.episodes", cfg.eval.episodes, 1)
    check_range("eval.chunk", cfg.eval.chunk, 1)
    check_range("eval.val_tasks", cfg.eval.val_tasks, 1)
    check_range("eval.tune_episodes", cfg.eval.get("tune_episodes", 0), 0)
    init = cfg.meta.get("init", "random")
    check_choice("meta.init", init, ("random",) + tuple(episodic.HEADS))
    if init != "random" and init not in validation.algorithm_names(cfg, episodic.HEADS):
        raise MetamusicError(f"meta.init={init!r} starts the episodic heads from the {init} head's encoder: add "
                             f"{init} to meta.algorithm, or set meta.init=random")
    check_choice("meta.freeze_encoder", cfg.meta.get("freeze_encoder", False), (False, True))
    if cfg.meta.get("freeze_encoder", False) and init == "random":
        raise MetamusicError("meta.freeze_encoder=True keeps the encoder the heads start from (meta.init) fixed: "
                             "name that head in meta.init, or set meta.freeze_encoder=False")
    check_range("eval.finetune_episodes", cfg.eval.get("finetune_episodes", 0), 0)
    check_range("eval.finetune_lr", cfg.eval.get("finetune_lr", 1e-4), 1e-8, integer=False)
    check_range("meta.feature_loss", cfg.meta.get("feature_loss", 0.0), 0, integer=False)
    if "features_l2" in cfg.eval:
        check_range("eval.features_l2", cfg.eval.features_l2, 0, integer=False)
    if cfg.eval.get("length", 0):
        check_range("eval.length", cfg.eval.length, 2)
    if cfg.model.encoder == "transformer" and cfg.data.length > TransformerEncoder.max_len:
        raise MetamusicError(f"data.length={cfg.data.length} is above the Transformer encoder's "
                             f"{TransformerEncoder.max_len} positions; lower it or use model.encoder=conv")


def eval_length(cfg) -> int:
    """Tokens per tune in the evaluation's episodes: eval.length (0 or unset: data.length, as trained), at most
    the Transformer encoder's positions. The encoders pool over time, so a longer window reads more of a long
    tune than training did (and a tune that fits is read whole)."""
    length = cfg.eval.get("length", 0) or cfg.data.length
    return min(length, TransformerEncoder.max_len) if cfg.model.encoder == "transformer" else length


def val_episodes(cfg, corpus, seed: int, length: int = 0, episodes: int = 0):
    """(`episodes` fixed meta-val episodes (0: eval.val_tasks) drawn with [cfg.seed, seed], their ways): as many
    ways as meta-val has styles, up to data.ways; support and query tunes from separate pools; `length` tokens
    per tune (0: data.length, as training's checks read them). On the host."""
    val = corpus.styles_in("val")
    ways = min(cfg.data.ways, len(val))
    sampler = EpisodeSampler(corpus, val, ways=ways, shots=cfg.data.shots, queries=cfg.data.queries,
                             length=length or cfg.data.length, pool="support/query")
    return sampler.sample(np.random.default_rng([cfg.seed, seed]), episodes or cfg.eval.val_tasks), ways


def predicted(predict, params, eps, chunk: int) -> np.ndarray:
    """predict(params, episodes on the device) over host episodes `chunk` at a time -> labels [B, N*Q] on the
    host. One call over every episode would hold every tune's activations at once, and a Transformer encoder's
    attention over whole tunes then outgrows the memory."""
    return map_chunks(lambda part, a: predict(params, inputs.to_device(part)), eps, chunk)


def feature_targets(sampler: EpisodeSampler, enc, seed: int, episodes: int = 40):
    """(tokens, positions) -> the windows' hand-made features standardised by their mean and spread over
    `episodes` training episodes drawn once (a spread below 0.01 counts as 0.01, so a column that is almost
    always zero does not dominate the loss): the auxiliary feature loss's targets (meta.feature_loss)."""
    ref = sampler.sample(np.random.default_rng([seed, 4242]), episodes)
    f = np.concatenate([features.window_features(ref.support, ref.support_pos, enc.num_classes, enc.min_note),
                        features.window_features(ref.query, ref.query_pos, enc.num_classes, enc.min_note)], 1)
    f = f.reshape(-1, f.shape[-1])
    mu, sd = f.mean(0), np.maximum(f.std(0), 1e-2)
    return lambda tok, pos: ((features.window_features(tok, pos, enc.num_classes, enc.min_note) - mu) / sd
                             ).astype(np.float32)


def encoder_labels(meta):
    """"frozen" for every leaf of the model's encoder ("enc"), "train" elsewhere: optax.multi_transform labels."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "frozen" if any(getattr(k, "key", None) == "enc" for k in path) else "train", meta)


def build(cfg, corpus=None) -> base.Experiment:
    enc = corpus.enc if corpus is not None else inputs.encoding(cfg)
    names = tuple(validation.algorithm_names(cfg, episodic.HEADS))
    m = cfg.model
    fields = dict(m.conv if m.encoder == "conv" else m.transformer)
    fields["bar_positions"] = inputs.bar_positions(cfg)
    fields["music_inputs"] = m.get("inputs", "notes") in ("music", "rhythm")
    fields["rhythm_inputs"] = m.get("inputs", "notes") == "rhythm"
    fields["pool_inputs"] = m.get("pool", "output") == "output+inputs"
    pre = episodic.pretraining_heads(names)
    feature_loss = float(cfg.meta.get("feature_loss", 0.0))
    pretrain_classes = m.get("pretrain_classes", 64) if pre else 0
    model = FewShotClassifier(enc.vocab_size, enc.num_classes, m.encoder, tuple(sorted(fields.items())),
                              m.relation_hidden, m.get("relation_layers", 2), m.get("pairs", "concat"),
                              m.get("relation_prior", "none"),
                              ridge_head=any(episodic.HEADS[n].ridge for n in names), pretrain_classes=pretrain_classes,
                              feature_dim=features.FEATURE_DIM if feature_loss else 0,
                              token_head=any(episodic.HEADS[n].token_head for n in names))
    apply = lambda method: (lambda p, *a: model.apply(p, *a, method=method))
    parts = episodic.Parts(embed=apply(FewShotClassifier.embed), relate=apply(FewShotClassifier.relate),
                           ridge=apply(FewShotClassifier.ridge), classify=apply(FewShotClassifier.classify),
                           features=apply(FewShotClassifier.predict_features),
                           token_logits=apply(FewShotClassifier.token_logits),
                           hide=lambda key, t, mask: masked_notes(key, t, mask, enc.num_classes),
                           augment=lambda key, t, mask, pos: tune_view(key, t, mask, pos, enc.num_classes,
                                                                              cfg.data.transpose))
    aggregate = m.aggregate
    train_ways = cfg.data.get("train_ways", 0) or cfg.data.ways  # training episodes' N (Snell et al. train wider)
    train_styles = corpus.styles_in("train") if corpus is not None else []
    if pretrain_classes and len(train_styles) > pretrain_classes:
        raise MetamusicError(f"model.pretrain_classes={pretrain_classes} is below the {len(train_styles)} meta-train "
                             f"styles that pretraining classifies; raise it to at least {len(train_styles)}")

    def init_params():
        T = cfg.data.length
        return model.init(jax.random.PRNGKey(cfg.seed), jnp.zeros((2, T), jnp.int32), jnp.ones((2, T)),
                          jnp.zeros((2, T), jnp.int32))

    def algorithm(name, ways=None):
        make_loss = lambda parts: episodic.head_loss(name, parts, ways or train_ways, aggregate)
        own = parts
        if frozen(name):  # no gradient reaches the encoder, so its backward pass is never computed
            own = parts._replace(embed=lambda p, *a: jax.lax.stop_gradient(parts.embed(p, *a)))
        return direct.make(name, episodic.with_feature_loss(make_loss, own, feature_loss) if feature_loss
                           else make_loss(own))

    def scores(name, params, ep, ways, parts=parts):
        """Class scores [N*Q, N] of one episode (argmax: the prediction); `name` is a method or one of
        its extra rows (episodic.EXTRA_SCORES)."""
        for method, rows in episodic.EXTRA_SCORES.items():
            if name in rows:
                extra = {"lr": finetune_lr} if name in episodic.COSTLY else {}
                return rows[name](parts, params, ep, ways, aggregate, **extra)
        return episodic.HEADS[name].scores(parts, params, ep, ways, aggregate)

    finetune_lr = cfg.eval.get("finetune_lr", 1e-4)
    on_features = parts._replace(embed=lambda p, feats, mask, pos: feats)

    def feature_predictor(name, ways):
        """jit(params, episodes whose support/query hold encoder features [B, n, C]) -> labels [B, N*Q]:
        the heads on features computed once per method (every head but fine-tuning reads only those)."""
        return jax.jit(jax.vmap(lambda p, ep: scores(name, p, ep, ways, on_features).argmax(-1), in_axes=(None, 0)))

    def probabilities(name, params, ep, ways):
        """Scores in [0, 1] per class: relation scores, or the softmax of a head's logits."""
        head = episodic.HEADS.get(name, episodic.HEADS["protonet"])  # extra rows give logits
        return head.probabilities(scores(name, params, ep, ways))

    def predictor(name, ways):
        """jit(params, episodes [B, ...]) -> predicted labels [B, N*Q].

        The rows that fine-tune the encoder per episode (episodic.COSTLY) run one episode per compiled
        call instead: under vmap every episode has its own encoder weights, so each convolution becomes
        one batched over weights, which XLA:CPU ran slower than the episodes one after another.
        (A `lax.map` would keep them in one call, but puts the encoder inside a while loop's body, which
        XLA:CPU ran many times slower still.)"""
        one = lambda p, ep: scores(name, p, ep, ways).argmax(-1)
        if name not in episodic.COSTLY:
            return jax.jit(jax.vmap(one, in_axes=(None, 0)))
        single = jax.jit(one)

        def each(params, eps):
            return jnp.stack([single(params, jax.tree.map(lambda x: x[i], eps)) for i in range(len(eps[0]))])
        return each

    def train_sampler(name):
        if cfg.data.get("train_ways", 0) and train_ways > len(train_styles):
                raise MetamusicError(f"data.train_ways={train_ways} is above the {len(train_styles)} meta-train styles; "
                                 f"lower it to at most {len(train_styles)} (or 0 for data.ways)")
        sampler = EpisodeSampler(corpus, train_styles, ways=train_ways, shots=cfg.data.shots,
                                 queries=cfg.data.queries, length=cfg.data.length, transpose=cfg.data.transpose)
        slot = np.full(len(corpus.styles), -1, np.int32)
        slot[[corpus.style_index(s) for s in train_styles]] = np.arange(len(train_styles))

        targets = feature_targets(sampler, corpus.enc, cfg.seed) if feature_loss else None

        def sample(step):
            ep = sampler.sample(step_rng(cfg.seed, step), cfg.meta.batch)
            if episodic.HEADS[name].global_labels:  # labels become global meta-train style slots (episodic.pretrain_loss)
                ep = ep._replace(classes=slot[ep.classes])
            if targets is not None:
                ep = FeatureEpisodes(*ep, targets(ep.support, ep.support_pos), targets(ep.query, ep.query_pos))
            return inputs.to_device(ep)
        return sample

    def val_eval(name, algo):
        """Accuracy on fixed meta-val episodes (`val_episodes`), predicted eval.chunk episodes per call as the
        evaluation does (`predicted`)."""
        eps, ways = val_episodes(cfg, corpus, 777)
        predict = predictor(name, ways)

        def accuracy(state, step):
            pred = predicted(predict, state.meta["params"], eps, cfg.eval.chunk)
            return {"val/accuracy": float(np.mean(pred == eps.query_labels))}
        return accuracy

    def frozen(name):
        """Whether head `name` keeps meta.init's encoder fixed (meta.freeze_encoder)."""
        return bool(cfg.meta.get("freeze_encoder", False) and start_from(name))

    def start_from(name):
        """meta.init starts every other head, except a label-free one (it trains its own encoder)."""
        init = cfg.meta.get("init", "random")
        if init == "random" or name == init or episodic.HEADS[name].pretraining:
            return None
        return init

    def optimizer(name):
        """Adam with clipping; with meta.freeze_encoder, a head started from meta.init's encoder updates only
        its own parameters (the encoder's updates are zero), so its row and meta.init's rows read the same
        features and their paired difference is what the head's comparison adds."""
        tx = optim.make_optimizer(cfg.optim.lr, clip=cfg.optim.clip)
        if not frozen(name):
            return tx
        return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, encoder_labels)

    return base.Experiment(
        family="classify", cfg=cfg, corpus=corpus, loss_fn=None, init_params=init_params,
        algorithms=names, baselines=(), algorithm=algorithm,
        optimizer=optimizer,
        train_steps=lambda name: cfg.steps, train_sampler=train_sampler, val_eval=val_eval, model=model, enc=enc,
        start_from=start_from, optional_parts=("ridge", "pretrain_head", "token_out"),  # built for R2D2 / pretraining / masked heads only
        parts=ClassifyParts(parts, scores, probabilities, predictor, feature_predictor))


FAMILY = Family("classify", validate, build, evaluator="metamusic.eval.classify:evaluate", script="run_relation.py",
                cross_corpus=True)
