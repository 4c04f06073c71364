"""Wiring for few-shot style classification: episode sampler + encoder + relation/proto loss -> the shared loop.

Each method ('relation', 'protonet') trains into workdir/<method> through
`train.loop.run` and `meta.outer` (an episode is a task with no inner loop).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metamusic.data import EpisodeSampler, step_rng
from metamusic.data.episodes import Episodes
from metamusic.errors import check_choice, comma_list
from metamusic.meta import episodic
from metamusic.meta.outer import init_state, make_outer_step
from metamusic.models.relation import FewShotClassifier
from metamusic.train import sharding
from metamusic.train.loop import LoopConfig, run
from metamusic.train.melody import encoding, load_data

METHODS = ("relation", "protonet")


class Setup(NamedTuple):
    corpus: object
    model: FewShotClassifier
    embed: object
    relate: object


def setup(cfg, corpus=None, need_corpus: bool = True) -> Setup:
    """Model and loss functions; the corpus is loaded unless given or not needed (scoring files)."""
    check_choice("model.encoder", cfg.model.encoder, ("conv", "transformer"))
    check_choice("relation.aggregate", cfg.relation.aggregate, episodic.AGGREGATES)
    if corpus is None and need_corpus:
        corpus = load_data(cfg)
    enc = corpus.enc if corpus is not None else encoding(cfg)
    kwargs = tuple(sorted(dict(cfg.model.conv if cfg.model.encoder == "conv" else cfg.model.transformer).items()))
    model = FewShotClassifier(enc.vocab_size, enc.num_classes, cfg.model.encoder, kwargs,
                              cfg.model.relation_hidden)
    embed = lambda p, x, m: model.apply(p, x, m, method=FewShotClassifier.embed)
    relate = lambda p, c, q: model.apply(p, c, q, method=FewShotClassifier.relate)
    return Setup(corpus, model, embed, relate)


def methods(cfg) -> list[str]:
    return comma_list("relation.methods", cfg.relation.methods, METHODS)


def to_device(ep: Episodes) -> Episodes:
    return Episodes(*(jnp.asarray(x) for x in ep))


def template_state(cfg, s: Setup, name: str):
    algo = episodic.make(name, s.embed, s.relate, cfg.data.ways, cfg.relation.aggregate)
    tx = optax.chain(optax.clip_by_global_norm(cfg.optim.clip), optax.adam(cfg.optim.lr))
    T = cfg.data.length
    params = s.model.init(jax.random.PRNGKey(cfg.seed), jnp.zeros((2, T), jnp.int32), jnp.ones((2, T)))
    return algo, tx, init_state(algo, tx, params)


def accuracy_fn(s: Setup, name: str, ways: int):
    """jit(params, episodes [B, ...]) -> predicted labels [B, N*Q]."""
    def predict(params, ep):
        if name == "relation":
            return episodic.relation_scores(s.embed, s.relate, params, ep, ways).argmax(-1)
        return episodic.proto_logits(s.embed, params, ep, ways).argmax(-1)

    return jax.jit(jax.vmap(predict, in_axes=(None, 0)))


def _val_eval(cfg, s: Setup, name: str):
    """Accuracy on fixed meta-val episodes (as many ways as meta-val has styles, up to data.ways)."""
    val = s.corpus.styles_in("val")
    ways = min(cfg.data.ways, len(val))
    sampler = EpisodeSampler(s.corpus, val, ways=ways, shots=cfg.data.shots, queries=cfg.data.queries,
                             length=cfg.data.length, pool="support/query")
    eps = to_device(sampler.sample(np.random.default_rng([cfg.seed, 777]), cfg.eval.val_episodes))
    predict = accuracy_fn(s, name, ways)

    def eval_fn(state, step):
        return {"val/accuracy": jnp.mean(predict(state.meta["params"], eps) == eps.query_labels)}

    return eval_fn


def train(cfg, workdir: str, name: str, corpus=None):
    s = setup(cfg, corpus)
    algo, tx, state = template_state(cfg, s, name)
    sampler = EpisodeSampler(s.corpus, s.corpus.styles_in("train"), ways=cfg.data.ways, shots=cfg.data.shots,
                             queries=cfg.data.queries, length=cfg.data.length, transpose=cfg.data.transpose)
    loop = LoopConfig.from_config(cfg, cfg.steps)
    sample = lambda step: to_device(sampler.sample(step_rng(cfg.seed, step), cfg.batch))
    step_fn, sample, state = sharding.distribute(make_outer_step(algo, tx), sample, state,
                                                 sharding.mesh_from_config(cfg))
    return run(os.path.join(workdir, name), state, step_fn, sample, loop,
               eval_fn=_val_eval(cfg, s, name), name=name)
