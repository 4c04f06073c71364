"""Wiring for the melody task: corpus + sampler + Flax LM + a meta algorithm -> the shared loop.

Every MAML variant and the joint-training baseline go through `train()`; each
trains into its own folder, workdir/<algorithm>, so one workdir holds a whole
comparison that `metamusic.eval.fewshot` then evaluates.
"""

from __future__ import annotations

import dataclasses
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metamusic.data import EncodingConfig, SplitConfig, TaskSampler, load_corpus, step_rng
from metamusic.errors import check_choice, comma_list
from metamusic.meta.algorithm import ALGORITHMS, InnerSpec, Task, make_algorithm
from metamusic.meta.outer import init_state, make_outer_step
from metamusic.models import lm_loss, make_model
from metamusic.train import sharding
from metamusic.train.loop import LoopConfig, run


class Setup(NamedTuple):
    corpus: object
    model: object
    loss_fn: object


def encoding(cfg) -> EncodingConfig:
    d = cfg.data
    return EncodingConfig(steps_per_quarter=d.steps_per_quarter, min_note=d.min_note, max_note=d.max_note,
                          key_normalize=d.key_normalize)


def load_data(cfg):
    d = cfg.data
    return load_corpus(d.root or None, cache_dir=d.cache_dir or None, workers=d.workers or None,
                       progress=cfg.progress, enc=encoding(cfg),
                       split=SplitConfig(seed=d.split_seed, min_tunes=d.min_tunes))


def setup(cfg, corpus=None) -> Setup:
    check_choice("model.name", cfg.model.name, ("lstm", "transformer"))
    corpus = corpus if corpus is not None else load_data(cfg)
    kwargs = dict(cfg.model.lstm if cfg.model.name == "lstm" else cfg.model.transformer)
    model = make_model(cfg.model.name, corpus.enc.vocab_size, **kwargs)

    def loss_fn(params, batch, key):
        tokens, mask = batch
        return lm_loss(model, params, tokens, mask)

    return Setup(corpus, model, loss_fn)


def head_mask(params):
    """1.0 on the output head's parameters (what ANIL adapts), 0.0 elsewhere."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.float32(any(getattr(k, "key", None) == "head" for k in path)), params)


def make_algo(cfg, s: Setup, name: str):
    check_choice("meta.algorithm", name, ALGORITHMS)
    inner = InnerSpec(cfg.meta.inner_steps, cfg.meta.inner_lr, cfg.meta.remat)
    opts = {}
    if name == "mamlpp":
        opts = {"msl_anneal_steps": cfg.meta.mamlpp_msl_anneal_steps,
                "first_order_steps": cfg.meta.mamlpp_first_order_steps}
    return make_algorithm(name, s.loss_fn, inner, head_mask=head_mask, **opts)


def make_tx(cfg, name: str):
    o = cfg.optim
    check_choice("optim.schedule", o.schedule, ("constant", "cosine"))
    lr = o.lr if name != "pretrain" else o.pretrain_lr
    steps = cfg.steps if name != "pretrain" else cfg.pretrain_steps
    # MAML++ prescribes a cosine meta-lr schedule; other algorithms follow optim.schedule.
    if o.schedule == "cosine" or name == "mamlpp":
        lr = optax.cosine_decay_schedule(lr, steps, alpha=0.05)
    return optax.chain(optax.clip_by_global_norm(o.clip), optax.adam(lr))


def to_task(tasks) -> Task:
    """data.Tasks (numpy) -> meta.Task of ((tokens, mask), (tokens, mask)) device arrays."""
    return Task((jnp.asarray(tasks.support), jnp.asarray(tasks.support_mask)),
                (jnp.asarray(tasks.query), jnp.asarray(tasks.query_mask)))


def init_params(cfg, s: Setup):
    dummy = jnp.zeros((1, cfg.data.length - 1), jnp.int32)
    return s.model.init(jax.random.PRNGKey(cfg.seed), dummy)


def template_state(cfg, s: Setup, name: str):
    """A fresh state of the right structure (restore target for eval and generation)."""
    algo = make_algo(cfg, s, name)
    tx = make_tx(cfg, name)
    return algo, tx, init_state(algo, tx, init_params(cfg, s))


def _val_eval(cfg, s: Setup, algo):
    """Mean query NLL on fixed meta-val tasks, before and after adaptation (a cheap training signal)."""
    styles = s.corpus.styles_in("val")
    sampler = TaskSampler(s.corpus, styles, shots=cfg.data.shots, queries=cfg.data.queries,
                          length=cfg.data.length, pool="support/query")
    tasks = to_task(sampler.sample(np.random.default_rng([cfg.seed, 777]), cfg.eval.val_tasks))
    steps = cfg.meta.inner_steps if algo.name != "pretrain" else 0

    @jax.jit
    def curve(meta, keys):
        res = jax.vmap(lambda t, k: algo.adapt(meta, t.support, k, query=t.query, steps=steps),
                       in_axes=(0, 0))(tasks, keys)
        return res.query_losses.mean(0)

    def eval_fn(state, step):
        q = curve(state.meta, jax.random.split(jax.random.PRNGKey(cfg.seed + 1), cfg.eval.val_tasks))
        return {"val/query_nll_before": q[0], "val/query_nll_after": q[-1]}

    return eval_fn


def train(cfg, workdir: str, name: str, corpus=None):
    """Trains one algorithm (or 'pretrain', the joint baseline) into workdir/<name>."""
    s = setup(cfg, corpus)
    algo, tx, state = template_state(cfg, s, name)
    return run_tasks(cfg, workdir, name, s.corpus, algo, tx, state, _val_eval(cfg, s, algo), name)


def run_tasks(cfg, workdir: str, name: str, corpus, algo, tx, state, eval_fn, label: str):
    """Meta-trains `algo` on generation tasks of the meta-train styles in the shared loop (optionally sharded).

    The melody LMs and the meta-GAN both train through here, into workdir/<name>.
    """
    sampler = TaskSampler(corpus, corpus.styles_in("train"), shots=cfg.data.shots, queries=cfg.data.queries,
                          length=cfg.data.length, transpose=cfg.data.transpose)
    batch = cfg.meta.batch if name != "pretrain" else cfg.meta.batch * cfg.meta.pretrain_batch_factor

    def sample(step):
        return to_task(sampler.sample(step_rng(cfg.seed, step), batch))

    loop = LoopConfig.from_config(cfg, cfg.steps if name != "pretrain" else cfg.pretrain_steps)
    step_fn, sample, state = sharding.distribute(make_outer_step(algo, tx), sample, state,
                                                 sharding.mesh_from_config(cfg))
    return run(os.path.join(workdir, name), state, step_fn, sample, loop, phase_fn=algo.phase,
               eval_fn=eval_fn, name=label)


def algorithms(cfg) -> list[str]:
    """The meta-learning algorithms of the run (cfg.meta.algorithm is a comma list)."""
    return comma_list("meta.algorithm", cfg.meta.algorithm, [a for a in ALGORITHMS if a != "pretrain"])
