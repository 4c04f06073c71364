"""The meta-learned GAN: generator and critic as one params pytree {"g", "d"} and one loss.

`meta.adversarial.make_loss` turns the two players into one `loss_fn`, so FIGR is the
registry's `reptile`, the DAWSON-style variant its `fomaml`, the style-conditioned GAN
its `amortized` (a support-set encoder sets both players' style context; no inner
loop), and the GAN trained on all styles the joint baseline, all through the same
outer step and loop as the melody models. Fine-tuning the joint GAN scales both
players' inner lrs by the factor in `baselines.finetune_scales` with the lowest
generator NLL on meta-val.

The generator starts from maximum likelihood (`gan.init="mle"`, the default). SeqGAN,
RelGAN and ScratchGAN all start from (or regularise towards) an MLE model, and ours did
worst where a random-init GAN is weakest (large leaps, MGEval average interval): the
`mle` baseline trains the generator alone by teacher-forced NLL over the meta-train
styles (the same loop, `baselines.mle_steps`), and every GAN method starts its
generator there. The MLE generator is also a row of the evaluation, because "Language
GANs falling short" (Caccia et al. 2020) found MLE models beat GANs once both are
compared across sampling temperatures.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from metamusic import baselines
from metamusic.data import TaskSampler
from metamusic.errors import check_choice, check_range
from metamusic.experiments import base, melody
from metamusic.meta import adversarial
from metamusic.meta.algorithm import InnerSpec
from metamusic.meta.registry import make_algorithm
from metamusic.models.encoders import SupportEncoder
from metamusic.models.gan import Critic, Generator, masked_nll
from metamusic.models.sampling import sample_gan

# Algorithms whose inner lrs are fixed: the GAN's are a pytree per player, which the learned-lr
# variants (metasgd, mamlpp) cannot start from, and ANIL's "head" is not defined for two players.
SUPPORTED = ("reptile", "fomaml", "maml", "amortized")
MLE = "mle"  # the generator trained by maximum likelihood alone: a baseline and (gan.init="mle") the GANs' start
INITS = ("mle", "random")
LABELS = {"reptile": "meta-GAN, Reptile (FIGR)", "fomaml": "meta-GAN, first-order MAML (DAWSON)",
          "maml": "meta-GAN, second-order MAML", "amortized": "meta-GAN, style-conditioned (amortized, no inner loop)",
          baselines.JOINT: "joint GAN", MLE: "MLE generator (GAN's LSTM, no critic)"}


def valid_mask(tokens, mask, classes: int):
    """1.0 where a window holds a melody token (not PAD, not BOS)."""
    return mask * (tokens < classes)


def validate(cfg) -> None:
    base.validate_loop(cfg)
    base.validate_data(cfg)
    base.validate_optim(cfg)
    check_choice("gan.loss", cfg.gan.loss, adversarial.KINDS)
    check_choice("gan.init", cfg.gan.get("init", "random"), INITS)
    base.check_positive("gan.tau", cfg.gan.tau)
    for f in ("mle_weight", "r1_weight", "gp_weight", "drift"):
        check_range(f"gan.{f}", cfg.gan[f], 0, integer=False)
    for f in ("embed_dim", "hidden", "z_dim"):
        check_range(f"model.generator.{f}", cfg.model.generator[f], 1)
    check_range("model.generator.context_dim", cfg.model.generator.get("context_dim", 0), 0)
    if "amortized" in base.algorithm_names(cfg, SUPPORTED) and not cfg.model.generator.get("context_dim", 0):
        base.raise_bad("model.generator.context_dim", cfg.model.generator.get("context_dim", 0),
                       "> 0 when meta.algorithm includes amortized (it sets both players' style context)")
    for f in ("dim", "layers", "kernel"):
        check_range(f"model.critic.{f}", cfg.model.critic[f], 1)
    base.algorithm_names(cfg, SUPPORTED)
    check_range("meta.inner_steps", cfg.meta.inner_steps, 1)
    base.check_positive("meta.g_lr", cfg.meta.g_lr)
    base.check_positive("meta.d_lr", cfg.meta.d_lr)
    check_range("optim.b1", cfg.optim.b1, 0, 1, integer=False)
    e, b = cfg.eval, cfg.baselines
    check_range("eval.steps", e.steps, 0)
    check_range("eval.samples", e.samples, 1)
    check_range("eval.val_tasks", e.val_tasks, 1)
    check_range("eval.distractors", e.distractors, 1)
    base.check_positive("eval.temperature", e.temperature)
    for t in e.get("temperatures", ()):
        base.check_positive("eval.temperatures (each)", t)
    check_range("baselines.joint_steps", b.joint_steps, 1)
    base.check_positive("baselines.joint_lr", b.joint_lr)
    check_range("baselines.joint_batch_factor", b.joint_batch_factor, 1)
    check_range("baselines.tune_episodes", b.tune_episodes, 1)
    if "mle_steps" in b:
        check_range("baselines.mle_steps", b.mle_steps, 1)
        base.check_positive("baselines.mle_lr", b.mle_lr)
    if not b.finetune_scales:
        base.raise_bad("baselines.finetune_scales", b.finetune_scales, "a non-empty list of factors")
    for s in b.finetune_scales:
        base.check_positive("baselines.finetune_scales (each)", s)
    check_range("generate.num", cfg.generate.num, 1)


def build(cfg, corpus) -> base.Experiment:
    enc = corpus.enc
    C = enc.num_classes
    g, d = cfg.model.generator, cfg.model.critic
    ctx = g.get("context_dim", 0)
    gen = Generator(enc.vocab_size, C, enc.bos, embed_dim=g.embed_dim, hidden=g.hidden, z_dim=g.z_dim,
                    context_dim=ctx)
    critic = Critic(dim=d.dim, layers=d.layers, kernel=d.kernel, context_dim=ctx)
    tau = float(cfg.gan.tau)

    def real_inputs(batch):
        tok, mask = batch[:2]  # (the bar-position channel is not used by the GAN yet)
        return jax.nn.one_hot(tok, C) * valid_mask(tok, mask, C)[..., None]  # PAD/BOS -> zero vectors

    def generate(gp, batch, key):
        tok, mask = batch[:2]
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
        tok, mask = batch[:2]
        return critic.apply(dp, x, valid_mask(tok, mask, C))

    loss_fn = adversarial.make_loss(generate, score, real_inputs, kind=cfg.gan.loss, gp_weight=cfg.gan.gp_weight,
                                    r1_weight=cfg.gan.r1_weight, drift=cfg.gan.drift,
                                    mle_weight=cfg.gan.mle_weight)

    def init_params():
        T = cfg.data.length
        kg, kd = jax.random.split(jax.random.PRNGKey(cfg.seed))
        z = jnp.zeros((1, g.z_dim))
        return {"g": gen.init(kg, z, jnp.zeros((1, T, C))),
                "d": critic.init(kd, jnp.zeros((1, T, C)), jnp.ones((1, T)))}

    template = jax.eval_shape(init_params)

    def mle_loss(params, batch, key):
        """Teacher-forced NLL of the generator (the critic untouched): the `mle` baseline's loss."""
        tok, mask = batch[:2]
        z = jax.random.normal(key, (tok.shape[0], g.z_dim))
        nll = masked_nll(gen.apply(params["g"], z, tok, method=Generator.teacher_forced), tok, mask, C)
        return nll, {"g_nll": nll}

    se = cfg.model.get("support_encoder", {"dim": 64, "layers": 3})
    support_encoder = SupportEncoder(enc.vocab_size, C, out_dim=max(ctx, 1), dim=se["dim"], layers=se["layers"])

    def encoder_init():
        x = jnp.zeros((1, cfg.data.length), jnp.int32)
        return support_encoder.init(jax.random.PRNGKey(cfg.seed + 17), x, jnp.ones((1, cfg.data.length)))

    def condition(enc_params, params, support):
        """Both players with their style context set to the embedding of the support windows. The critic
        reads it through a stop-gradient (its own projection learns what to do with it), so the encoder is
        trained by the generator's losses only and never serves both sides of the game."""
        tok, mask = support[:2]
        e = support_encoder.apply(enc_params, tok, mask)[None]
        put = lambda p, v: {**p, "params": {**p["params"], "context": v.astype(p["params"]["context"].dtype)}}
        return {"g": put(params["g"], e), "d": put(params["d"], jax.lax.stop_gradient(e))}

    def lrs(scale: float = 1.0):
        return adversarial.player_lrs(template, cfg.meta.g_lr * scale, cfg.meta.d_lr * scale)

    inner = InnerSpec(cfg.meta.inner_steps, lrs(), cfg.meta.remat)

    def algorithm(name):
        if name == MLE:
            return baselines.joint_algorithm(mle_loss, inner)
        if baselines.is_joint(name):
            return baselines.joint_algorithm(loss_fn, inner)
        return make_algorithm(name, loss_fn, inner, encoder_init=encoder_init, condition=condition)

    def optimizer(name):
        if name == MLE:  # plain Adam: no adversary to balance
            return base.make_optimizer(cfg.baselines.mle_lr, clip=cfg.optim.clip)
        lr = cfg.baselines.joint_lr if baselines.is_joint(name) else cfg.optim.lr
        return base.make_optimizer(lr, clip=cfg.optim.clip, b1=cfg.optim.b1)

    def train_steps(name):
        if name == MLE:
            return cfg.baselines.mle_steps
        return baselines.joint_steps(cfg) if baselines.is_joint(name) else cfg.steps

    def sample(g_params, num: int, length: int, key, temperature: float = 1.0):
        """Generated melodies as class tokens [num, length] (exact samples at temperature 1: Gumbel-max)."""
        return sample_gan(gen, g_params, num=num, length=length, key=key, temperature=temperature)

    def draw(params, support, key):
        """generate.num melodies of data.length tokens, BOS first (as written to MIDI)."""
        toks = sample(params["g"], cfg.generate.num, cfg.data.length, key)
        return np.concatenate([np.full((len(toks), 1), enc.bos, np.int32), toks], 1)

    return base.Experiment(
        family="gan", cfg=cfg, corpus=corpus, loss_fn=loss_fn, init_params=init_params,
        algorithms=tuple(base.algorithm_names(cfg, SUPPORTED)), baselines=_baselines(cfg),
        algorithm=algorithm, optimizer=optimizer, train_steps=train_steps,
        train_sampler=lambda name: melody.task_sampler(cfg, corpus, name),
        val_eval=lambda name, algo: (melody.val_eval(cfg, corpus, algo, 0, _mle_metrics) if name == MLE else
                                     melody.val_eval(cfg, corpus, algo, cfg.meta.inner_steps, _player_metrics)),
        label=lambda name: LABELS.get(name, f"meta-GAN, {name}"), model=gen, enc=enc,
        parts={"critic": critic, "sample": sample, "lrs": lrs, "draw": draw, "tuning": tuning, "mle_loss": mle_loss},
        start_from=lambda name: MLE if cfg.gan.get("init", "random") == "mle" and name != MLE else None)


def _baselines(cfg) -> tuple:
    """The joint GAN, and the MLE generator where the config has one (runs saved before it have not)."""
    return ((MLE,) if "mle_steps" in cfg.baselines else ()) + (baselines.JOINT,)


def _mle_metrics(res) -> dict:
    return {"val/g_nll": res.query_aux["g_nll"].mean()}


def _player_metrics(res) -> dict:
    aux = jax.tree.map(lambda a: a.mean(0), res.query_aux)
    out = {}
    for k in ("d_loss", "g_adv", "g_nll", "d_real", "d_fake"):
        out[f"val/{k}_before"], out[f"val/{k}_after"] = aux[k][0], aux[k][-1]
    return out


def tuning(exp: base.Experiment, name: str = baselines.JOINT) -> baselines.Tuning:
    """Fine-tuning a trained baseline (the joint GAN by its GAN loss, the MLE generator by its likelihood):
    both players' inner lrs times a scale, `eval.steps` steps; the scale with the lowest generator NLL on
    meta-val query tunes after adapting."""
    cfg = exp.cfg
    sampler = TaskSampler(exp.corpus, exp.corpus.styles_in("val"), shots=cfg.data.shots, queries=cfg.data.queries,
                          length=cfg.data.length, pool="support/query")
    n = cfg.baselines.tune_episodes
    tasks = base.to_task(sampler.sample(np.random.default_rng([cfg.seed, 778]), n))
    keys = jax.random.split(jax.random.PRNGKey(cfg.seed + 2), n)

    def curve(meta, lr, steps):
        loss = exp.parts["mle_loss"] if name == MLE else exp.loss_fn
        algo = baselines.finetune_algorithm(loss, lr, steps, cfg.meta.remat)
        res = jax.jit(jax.vmap(lambda t, k: algo.adapt(meta, t.support, k, query=t.query)))(tasks, keys)
        return np.mean(np.asarray(res.query_aux["g_nll"]), 0)

    return baselines.Tuning(tuple(cfg.baselines.finetune_scales), exp.parts["lrs"], cfg.eval.steps, False, curve)
