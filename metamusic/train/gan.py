"""Wiring for the meta-GAN: corpus + sampler + generator/critic + the meta core -> the shared loop.

The GAN's two players become one params pytree {"g", "d"} and one loss
(`meta.adversarial.make_loss`), so FIGR is the project's `reptile`, the DAWSON-style
variant its `fomaml`, and the GAN trained on all styles its `pretrain`, all through
the same `outer_step` and training loop as the melody models. Each trains into
workdir/<algorithm>.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metamusic.data import TaskSampler
from metamusic.errors import check_choice, comma_list
from metamusic.meta import adversarial
from metamusic.meta.algorithm import InnerSpec, make_algorithm
from metamusic.meta.outer import init_state
from metamusic.models.gan import Critic, Generator, masked_nll
from metamusic.train import melody as mel

ALGORITHMS = ("reptile", "fomaml")  # meta-learned; "pretrain" is the joint GAN baseline
LABELS = {"reptile": "meta-GAN, Reptile (FIGR)", "fomaml": "meta-GAN, first-order MAML (DAWSON)",
          "pretrain": "joint GAN"}


class Setup(NamedTuple):
    corpus: object
    gen: Generator
    critic: Critic
    loss_fn: object
    enc: object


def valid_mask(tokens, mask, classes: int):
    """1.0 where a window holds a melody token (not PAD, not BOS)."""
    return mask * (tokens < classes)


def setup(cfg, corpus=None) -> Setup:
    check_choice("gan.loss", cfg.gan.loss, adversarial.KINDS)
    corpus = corpus if corpus is not None else mel.load_data(cfg)
    enc = corpus.enc
    C = enc.num_classes
    g, d = cfg.model.generator, cfg.model.critic
    gen = Generator(enc.vocab_size, C, enc.bos, embed_dim=g.embed_dim, hidden=g.hidden, z_dim=g.z_dim)
    critic = Critic(dim=d.dim, layers=d.layers, kernel=d.kernel)
    tau = float(cfg.gan.tau)

    def real_inputs(batch):
        tok, mask = batch
        return jax.nn.one_hot(tok, C) * valid_mask(tok, mask, C)[..., None]  # PAD/BOS -> zero vectors

    def generate(gp, batch, key):
        tok, mask = batch
        kz, kn = jax.random.split(key)
        z = jax.random.normal(kz, (tok.shape[0], g.z_dim))
        noise = jax.random.gumbel(kn, tok.shape + (C,))
        if cfg.gan.mle_weight > 0:
            fake, logits = gen.apply(gp, z, noise, tau, tokens=tok)
            nll = masked_nll(logits, tok, mask, C)
        else:
            fake, nll = gen.apply(gp, z, noise, tau), jnp.zeros(())
        # fakes get the real windows' padding pattern, so padding is no cue to the critic
        return fake * valid_mask(tok, mask, C)[..., None], nll

    def score(dp, x, batch):
        tok, mask = batch
        return critic.apply(dp, x, valid_mask(tok, mask, C))

    loss_fn = adversarial.make_loss(generate, score, real_inputs, kind=cfg.gan.loss, gp_weight=cfg.gan.gp_weight,
                                    r1_weight=cfg.gan.r1_weight, drift=cfg.gan.drift,
                                    mle_weight=cfg.gan.mle_weight)
    return Setup(corpus, gen, critic, loss_fn, enc)


def init_params(cfg, s: Setup):
    C, T = s.enc.num_classes, cfg.data.length
    kg, kd = jax.random.split(jax.random.PRNGKey(cfg.seed))
    z = jnp.zeros((1, cfg.model.generator.z_dim))
    return {"g": s.gen.init(kg, z, jnp.zeros((1, T, C))),
            "d": s.critic.init(kd, jnp.zeros((1, T, C)), jnp.ones((1, T)))}


def make_algo(cfg, s: Setup, name: str, params):
    check_choice("meta.algorithm", name, ALGORITHMS + ("pretrain",))
    lrs = adversarial.player_lrs(params, cfg.meta.g_lr, cfg.meta.d_lr)
    return make_algorithm(name, s.loss_fn, InnerSpec(cfg.meta.inner_steps, lrs, cfg.meta.remat))


def make_tx(cfg, name: str):
    o = cfg.optim
    lr = o.lr if name != "pretrain" else o.pretrain_lr
    return optax.chain(optax.clip_by_global_norm(o.clip), optax.adam(lr, b1=o.b1))


def template_state(cfg, s: Setup, name: str):
    """(algorithm, optimizer, fresh state): the restore target for eval and generation."""
    params = init_params(cfg, s)
    algo = make_algo(cfg, s, name, params)
    tx = make_tx(cfg, name)
    return algo, tx, init_state(algo, tx, params)


def sample_tokens(s: Setup, g_params, num: int, length: int, key) -> np.ndarray:
    """Generated melodies as tokens [num, length] (exact samples: Gumbel-max at temperature 1)."""
    return np.asarray(_sampler(s.gen, s.enc.num_classes, s.gen.z_dim, num, length)(g_params, key))


@functools.lru_cache(maxsize=32)
def _sampler(gen, C, z_dim, num, length):
    """One compiled sampler per (generator, shapes): evaluation samples many styles and methods."""
    @jax.jit
    def run_(gp, key):
        kz, kn = jax.random.split(key)
        z = jax.random.normal(kz, (num, z_dim))
        return gen.apply(gp, z, jax.random.gumbel(kn, (num, length, C))).argmax(-1)

    return run_


def _val_eval(cfg, s: Setup, algo):
    """Each player's loss on fixed meta-val tasks' query tunes, before and after adapting on the support."""
    sampler = TaskSampler(s.corpus, s.corpus.styles_in("val"), shots=cfg.data.shots, queries=cfg.data.queries,
                          length=cfg.data.length, pool="support/query")
    tasks = mel.to_task(sampler.sample(np.random.default_rng([cfg.seed, 777]), cfg.eval.val_tasks))
    steps = cfg.meta.inner_steps

    @jax.jit
    def curve(meta, keys):
        res = jax.vmap(lambda t, k: algo.adapt(meta, t.support, k, query=t.query, steps=steps))(tasks, keys)
        return jax.tree.map(lambda a: a.mean(0), res.query_aux)

    def eval_fn(state, step):
        aux = curve(state.meta, jax.random.split(jax.random.PRNGKey(cfg.seed + 1), cfg.eval.val_tasks))
        out = {}
        for k in ("d_loss", "g_adv", "g_nll", "d_real", "d_fake"):
            out[f"val/{k}_before"], out[f"val/{k}_after"] = aux[k][0], aux[k][-1]
        return out

    return eval_fn


def train(cfg, workdir: str, name: str, corpus=None):
    """Trains one algorithm (or 'pretrain', the joint GAN) into workdir/<name>."""
    s = setup(cfg, corpus)
    algo, tx, state = template_state(cfg, s, name)
    return mel.run_tasks(cfg, workdir, name, s.corpus, algo, tx, state, _val_eval(cfg, s, algo), f"gan/{name}")


def algorithms(cfg) -> list[str]:
    return comma_list("meta.algorithm", cfg.meta.algorithm, list(ALGORITHMS))
