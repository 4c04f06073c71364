"""The meta-GAN's two players as a game: each player's own outer optimizer (two time-scales, critic steps per
generator step, critic pretraining) and the game statistics read on meta-val (critic accuracy, score gap,
adversarial-to-likelihood gradient ratio). `experiments.gan` builds the experiment with them."""

from __future__ import annotations

import jax
import numpy as np
import optax

from metamusic.data import TaskSampler
from metamusic.experiments import inputs, optim
from metamusic.meta import adversarial


GAME_STATS = ("d_loss", "d_cls", "d_acc", "gap", "g_adv", "g_nll", "d_real", "d_fake")


def _player_metrics(res) -> dict:
    aux = jax.tree.map(lambda a: a.mean(0), res.query_aux)
    out = {}
    for k in GAME_STATS:
        out[f"val/{k}_before"], out[f"val/{k}_after"] = aux[k][0], aux[k][-1]
    return out


def val_eval(cfg, corpus, algo, loss_fn):
    """The game on fixed meta-val tasks (held-out styles and tunes): each player's loss, the critic's
    classification loss without its penalty (`d_cls`; 2 ln 2 = 1.386 is chance for the ns loss), its
    accuracy and real-minus-fake score gap on the query windows, before and after adapting on the support
    windows, and the ratio of the adversarial to the likelihood gradient norm on the adapted generator
    (`val/grad_ratio`: whether the critic's verdict reaches the generator at all)."""
    sampler = TaskSampler(corpus, corpus.styles_in("val"), shots=cfg.data.shots, queries=cfg.data.queries,
                          length=cfg.data.length, pool="support/query")
    tasks = inputs.to_task(sampler.sample(np.random.default_rng([cfg.seed, 777]), cfg.eval.val_tasks))

    @jax.jit
    def stats(meta, keys):
        def one(t, k):
            res = algo.adapt(meta, t.support, k, query=t.query, steps=cfg.meta.inner_steps)
            return res, adversarial.grad_norm_ratio(loss_fn, res.params, t.query, k)

        res, ratio = jax.vmap(one)(tasks, keys)
        return _player_metrics(res), ratio.mean()

    def eval_fn(state, step):
        out, ratio = stats(state.meta, jax.random.split(jax.random.PRNGKey(cfg.seed + 1), cfg.eval.val_tasks))
        return {**out, "val/grad_ratio": ratio}

    return eval_fn


def _player_labels(meta) -> object:
    """"d" for the critic's leaves of a meta pytree ({"params": {"g", "d"}, ...}), "g" for the rest (the
    generator, and a support encoder, which the generator's losses train)."""
    def label(path, _):
        keys = [getattr(k, "key", None) for k in path]
        return "d" if keys[:2] == ["params", "d"] else "g"

    return jax.tree_util.tree_map_with_path(label, meta)


def optimizer(cfg, g_lr: float):
    """The two players' own optimizers (two time-scales, Heusel et al. 2017): the generator's Adam at
    `g_lr` after clipping at optim.clip; the critic's Adam at optim.critic_lr after its own clip
    (optim.critic_clip), so the likelihood's gradient norm no longer sets the critic's clipping. The
    generator updates once every gan.critic_steps steps (its gradients averaged over them,
    `optax.MultiSteps`), so the critic takes that many steps per generator step at no extra compute,
    and it holds still for the first gan.critic_pretrain steps while the critic learns real windows
    against the starting generator's samples. optim.critic_lr = 0 is the one Adam and one clip over both
    players of the runs saved before these settings."""
    o, gcfg = cfg.optim, cfg.gan
    if not o.critic_lr:
        return optim.make_optimizer(g_lr, clip=o.clip, b1=o.b1)
    k = int(gcfg.critic_steps)
    frozen = -(-int(gcfg.critic_pretrain) // k)  # (counted in generator updates, one per k steps)
    g_sched = optax.join_schedules([optax.constant_schedule(0.0), optax.constant_schedule(g_lr)], [frozen])
    g_tx = optax.chain(optax.clip_by_global_norm(o.clip), optax.adam(g_sched, b1=o.b1)) if o.clip else \
        optax.adam(g_sched, b1=o.b1)
    if k > 1:
        g_tx = optax.MultiSteps(g_tx, every_k_schedule=k).gradient_transformation()
    d_tx = optim.make_optimizer(o.critic_lr, clip=o.critic_clip, b1=o.b1)
    return optax.multi_transform({"g": g_tx, "d": d_tx}, _player_labels)
