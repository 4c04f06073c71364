"""Few-shot style classification: a sequence encoder with a metric head, trained on N-way K-shot episodes.

Methods are the heads of `meta.episodic.HEADS` named in `meta.algorithm` (relation
network, prototypical network); an episode is a task with no inner loop
(`meta.direct`), so they train in the same loop as everything else. Built without a
corpus (encoding from the config) when only scoring files (`StyleScorer`, classify).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from metamusic.data import EpisodeSampler, step_rng
from metamusic.errors import check_choice, check_range
from metamusic.experiments import base
from metamusic.meta import direct, episodic
from metamusic.models import ENCODERS
from metamusic.models.relation import FewShotClassifier


def validate(cfg) -> None:
    base.validate_loop(cfg)
    base.validate_data(cfg)
    base.validate_optim(cfg)
    check_range("data.ways", cfg.data.ways, 2)
    check_choice("model.encoder", cfg.model.encoder, ENCODERS)
    for f, v in cfg.model.conv.items():
        check_range(f"model.conv.{f}", v, 1)
    for f, v in cfg.model.transformer.items():
        check_range(f"model.transformer.{f}", v, 1)
    check_range("model.relation_hidden", cfg.model.relation_hidden, 1)
    check_choice("model.aggregate", cfg.model.aggregate, episodic.AGGREGATES)
    base.algorithm_names(cfg, episodic.HEADS)
    check_range("eval.episodes", cfg.eval.episodes, 1)
    check_range("eval.chunk", cfg.eval.chunk, 1)
    check_range("eval.val_tasks", cfg.eval.val_tasks, 1)


def build(cfg, corpus=None) -> base.Experiment:
    enc = corpus.enc if corpus is not None else base.encoding(cfg)
    kwargs = tuple(sorted(dict(cfg.model.conv if cfg.model.encoder == "conv" else cfg.model.transformer).items()))
    model = FewShotClassifier(enc.vocab_size, enc.num_classes, cfg.model.encoder, kwargs, cfg.model.relation_hidden)
    embed = lambda p, x, m: model.apply(p, x, m, method=FewShotClassifier.embed)
    relate = lambda p, c, q: model.apply(p, c, q, method=FewShotClassifier.relate)
    aggregate = cfg.model.aggregate

    def init_params():
        T = cfg.data.length
        return model.init(jax.random.PRNGKey(cfg.seed), jnp.zeros((2, T), jnp.int32), jnp.ones((2, T)))

    def algorithm(name, ways=None):
        return direct.make(name, episodic.head_loss(name, embed, relate, ways or cfg.data.ways, aggregate))

    def scores(name, params, ep, ways):
        """Class scores [N*Q, N] of one episode (argmax: the prediction)."""
        return episodic.HEADS[name].scores(embed, relate, params, ep, ways, aggregate)

    def probabilities(name, params, ep, ways):
        """Scores in [0, 1] per class: relation scores, or a prototypical net's softmax."""
        return episodic.HEADS[name].probabilities(scores(name, params, ep, ways))

    def predictor(name, ways):
        """jit(params, episodes [B, ...]) -> predicted labels [B, N*Q]."""
        return jax.jit(jax.vmap(lambda p, ep: scores(name, p, ep, ways).argmax(-1), in_axes=(None, 0)))

    def train_sampler(name):
        sampler = EpisodeSampler(corpus, corpus.styles_in("train"), ways=cfg.data.ways, shots=cfg.data.shots,
                                 queries=cfg.data.queries, length=cfg.data.length, transpose=cfg.data.transpose)
        return lambda step: base.to_device(sampler.sample(step_rng(cfg.seed, step), cfg.meta.batch))

    def val_eval(name, algo):
        """Accuracy on fixed meta-val episodes (as many ways as meta-val has styles, up to data.ways)."""
        val = corpus.styles_in("val")
        ways = min(cfg.data.ways, len(val))
        sampler = EpisodeSampler(corpus, val, ways=ways, shots=cfg.data.shots, queries=cfg.data.queries,
                                 length=cfg.data.length, pool="support/query")
        eps = base.to_device(sampler.sample(np.random.default_rng([cfg.seed, 777]), cfg.eval.val_tasks))
        predict = predictor(name, ways)
        return lambda state, step: {"val/accuracy": jnp.mean(predict(state.meta["params"], eps) == eps.query_labels)}

    return base.Experiment(
        family="classify", cfg=cfg, corpus=corpus, loss_fn=None, init_params=init_params,
        algorithms=tuple(base.algorithm_names(cfg, episodic.HEADS)), baselines=(), algorithm=algorithm,
        optimizer=lambda name: base.make_optimizer(cfg.optim.lr, clip=cfg.optim.clip),
        train_steps=lambda name: cfg.steps, train_sampler=train_sampler, val_eval=val_eval, model=model, enc=enc,
        parts={"embed": embed, "relate": relate, "scores": scores, "probabilities": probabilities,
               "predictor": predictor})
