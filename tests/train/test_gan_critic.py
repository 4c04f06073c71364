"""The in-game critic with the shipped settings (configs/gan.py: its own Adam and clip, dilated and
bar-aware, simplex R1 at its shipped weight, pretraining with the generator held still) learns to tell real
windows from its starting generator's samples, and the adversarial gradient then reaches the generator."""

import dataclasses

import jax
import numpy as np
import pytest

from configs import gan as gan_config
from configs import gan_tiny
from metamusic import baselines, experiments
from metamusic.data import TaskSampler
from metamusic.eval import two_sample
from metamusic.experiments import base, gan, inputs
from metamusic.meta import adversarial
from metamusic.train.trainer import train

PRETRAIN = 150


def _shipped_game_config():
    """gan_tiny's tiny generator and corpus with configs/gan.py's critic, penalty and optimizers."""
    cfg, full = gan_tiny.get_config(), gan_config.get_config()
    cfg.model.critic = full.model.critic
    for f in ("loss", "r1_weight", "r1_simplex", "estimator", "critic_steps", "mle_weight", "adv_weight"):
        cfg.gan[f] = full.gan[f]
    for f in ("lr", "b1", "clip", "critic_lr", "critic_clip"):
        cfg.optim[f] = full.optim[f]
    cfg.data.length, cfg.gan.prefix = 32, 8  # (the shipped 64 steps and 16-step prefix, halved)
    cfg.meta.algorithm, cfg.meta.batch = "reptile", 8
    cfg.baselines.mle_steps, cfg.baselines.mle_lr = 300, 3e-3
    cfg.baselines.joint_steps, cfg.gan.critic_pretrain = PRETRAIN, PRETRAIN  # the whole run is pretraining
    cfg.checkpoint_every = PRETRAIN
    experiments.validate(cfg)
    return cfg


@pytest.fixture(scope="module")
def pretrained(style_corpus, tmp_path_factory):
    """The MLE generator (300 steps), then the joint GAN from it: 150 steps of critic pretraining."""
    cfg = _shipped_game_config()
    exp = experiments.build(cfg, style_corpus)
    exp = dataclasses.replace(exp, val_eval=lambda name, algo: None)
    workdir = str(tmp_path_factory.mktemp("gan_critic"))
    for name in (gan.MLE, baselines.JOINT):
        train(exp, workdir, name)
    return cfg, exp, workdir


def _held_out_windows(cfg, corpus, n: int):
    """n windows of the meta-val styles' query pools: tunes the critic never trained on."""
    s = TaskSampler(corpus, corpus.styles_in("val"), shots=1, queries=n, length=cfg.data.length,
                    pool="support/query")
    t = inputs.to_task(s.sample(np.random.default_rng(5), 1))
    return jax.tree.map(lambda x: x[0], t.query)


def test_the_shipped_critic_tells_real_windows_from_the_starting_generators_samples(pretrained, style_corpus):
    cfg, exp, workdir = pretrained
    start = base.restore(exp, workdir, gan.MLE)["params"]
    meta = base.restore(exp, workdir, baselines.JOINT)
    # pretraining held the generator still
    for a, b in zip(jax.tree.leaves(start["g"]), jax.tree.leaves(meta["params"]["g"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    batch = _held_out_windows(cfg, style_corpus, 6)
    accs = [float(exp.loss_fn(meta["params"], batch, jax.random.PRNGKey(i))[1]["d_acc"]) for i in range(40)]
    right = int(round(np.mean(accs) * 2 * 6 * 40))
    lo, _ = two_sample.wilson(right, 2 * 6 * 40)
    # held-out accuracy above chance, its 95% CI clear of 0.5 (the 6 real windows recur under every key, so
    # the interval is optimistic for the real half; the fakes are fresh draws under each key)
    assert lo > 0.55, (np.mean(accs), lo)
    # a fresh critic of the same settings is at chance before training: the learning is the pretraining's
    fresh = exp.init_params()
    fresh_acc = np.mean([float(exp.loss_fn({"g": start["g"], "d": fresh["d"]}, batch, jax.random.PRNGKey(i))[1]
                                 ["d_acc"]) for i in range(40)])
    assert np.mean(accs) > fresh_acc + 0.05


def test_the_adversarial_gradient_reaches_the_generator(pretrained, style_corpus):
    """grad |adversarial| / |likelihood| on the generator after pretraining: logged as val/grad_ratio; here
    non-trivial (the critic's verdict is a real share of the generator's update) and finite."""
    cfg, exp, workdir = pretrained
    meta = base.restore(exp, workdir, baselines.JOINT)
    batch = _held_out_windows(cfg, style_corpus, 6)
    ratio = float(adversarial.grad_norm_ratio(exp.loss_fn, meta["params"], batch, jax.random.PRNGKey(0)))
    assert np.isfinite(ratio) and ratio > 0.05, ratio
