"""The meta-learned GAN: generator and critic as one params pytree {"g", "d"} and one loss.

`meta.adversarial.make_loss` turns the two players into one `loss_fn`, so FIGR is the
registry's `reptile`, the DAWSON-style variant its `fomaml`, the style-conditioned GAN
its `amortized` (a support-set encoder sets both players' style context; no inner
loop), and the GAN trained on all styles the joint baseline, all through the same
outer step and loop as the melody models. Fine-tuning the joint GAN scales both
players' inner lrs by the factor in `baselines.finetune_scales` with the lowest
generator NLL on meta-val.

The generator *is* the jointly trained melody LM by default (`gan.init="melody"`): the LSTM LM of
`eval.melody_workdir` (same tokens, bar-position channel, style context), sampled with Gumbel
straight-through by `models.gan.lm_generate` and started from that run's joint model; the amortized
meta-GAN starts from its amortized LM and support encoder, so every GAN begins where the likelihood-trained
melody models end and the adversarial training is what it adds. Its generated windows read the real
windows' bar positions, and it is sampled at evaluation by the melody models' own sampler.

With `gan.init="mle"` the generator is the GAN's own smaller LSTM (`model.generator`). SeqGAN,
RelGAN and ScratchGAN all start from (or regularise towards) an MLE model, and ours did
worst where a random-init GAN is weakest (large leaps, MGEval average interval): the
`mle` baseline trains the generator alone by teacher-forced NLL over the meta-train
styles (the same loop, `baselines.mle_steps`), and every GAN method starts its
generator there. The MLE generator is also a row of the evaluation, because "Language
GANs falling short" (Caccia et al. 2020) found MLE models beat GANs once both are
compared across sampling temperatures.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import os

import jax
import jax.numpy as jnp
import numpy as np

from metamusic import baselines
from metamusic.data import TaskSampler
from metamusic.data.melody import MAX_POS
from metamusic.errors import MetamusicError, check_choice, check_range
from metamusic.experiments import base, gan_game, inputs, melody, optim, validation
from metamusic.experiments.family import Family
from metamusic.meta import adversarial
from metamusic.meta.algorithm import InnerSpec
from metamusic.meta.registry import ALGORITHMS, Hooks, make_algorithm
from metamusic.models.encoders import SupportEncoder
from metamusic.models.gan import Critic, Generator, lm_generate, masked_nll
from metamusic.models.melody_lm import LSTMLM, lm_loss
from metamusic.models.sampling import sample_gan



def supported() -> tuple:
    """The algorithms a meta-GAN can use (registry entries marked `adversarial`): their inner lrs are fixed,
    since the GAN's are a pytree per player, which learned-lr variants cannot start from, and a head or a
    context mask is not defined for two players."""
    return tuple(n for n, e in ALGORITHMS.items() if e.adversarial)


def uses_encoder(name: str) -> bool:
    """Whether algorithm `name` conditions both players through a support encoder (no inner loop)."""
    return name in ALGORITHMS and "encoder" in ALGORITHMS[name].needs


MLE = "mle"  # the generator trained by maximum likelihood alone: a baseline and (gan.init="mle") the GANs' start
# "melody": the generator *is* the melody LM of eval.melody_workdir (its joint model; the amortized meta-GAN
# starts from that run's amortized LM and support encoder); "mle": the GAN's own LSTM after the `mle`
# baseline; "random": that LSTM from a fresh init
INITS = ("melody", "mle", "random")
LABELS = {baselines.JOINT: "joint GAN", MLE: "MLE generator (GAN's LSTM, no critic)"}


def label(name: str) -> str:
    """A method's row label: the baselines', or its registry entry's `gan_label`."""
    if name in LABELS:
        return LABELS[name]
    return (ALGORITHMS[name].gan_label if name in ALGORITHMS else "") or f"meta-GAN, {name}"


class GanParts(NamedTuple):
    """The meta-GAN's own pieces, read by its evaluation and fine-tuning."""

    critic: object  # models.gan.Critic
    lrs: Callable  # scale -> both players' inner lrs (a pytree like the params)
    mle_loss: Callable  # (params, batch, key) -> (generator NLL, aux): the MLE baseline's loss


def valid_mask(tokens, mask, classes: int):
    """1.0 where a window holds a melody token (not PAD, not BOS)."""
    return mask * (tokens < classes)


def validate(cfg) -> None:
    validation.validate_loop(cfg)
    validation.validate_data(cfg)
    validation.validate_optim(cfg)
    check_choice("gan.loss", cfg.gan.loss, adversarial.KINDS)
    check_choice("gan.init", cfg.gan.get("init", "random"), INITS)
    validation.check_positive("gan.tau", cfg.gan.tau)
    for f in ("mle_weight", "r1_weight", "gp_weight", "drift"):
        check_range(f"gan.{f}", cfg.gan[f], 0, integer=False)
    check_range("gan.adv_weight", cfg.gan.get("adv_weight", 1.0), 0, integer=False)
    check_choice("gan.estimator", cfg.gan.estimator, adversarial.ESTIMATORS)
    if cfg.gan.estimator == "reinforce" and cfg.gan.get("init", "random") != "melody":
        validation.raise_bad("gan.estimator", cfg.gan.estimator, "'gumbel' unless gan.init='melody' (REINFORCE "
                             "scores the melody LM's own samples)")
    check_range("gan.prefix", cfg.gan.prefix, 0, cfg.data.length - 2)
    check_range("gan.critic_steps", cfg.gan.critic_steps, 1)
    check_range("gan.critic_pretrain", cfg.gan.critic_pretrain, 0)
    check_range("optim.critic_lr", cfg.optim.critic_lr, 0, integer=False)
    check_range("optim.critic_clip", cfg.optim.critic_clip, 0, integer=False)
    for f in ("embed_dim", "hidden", "z_dim"):
        check_range(f"model.generator.{f}", cfg.model.generator[f], 1)
    check_range("model.generator.context_dim", cfg.model.generator.get("context_dim", 0), 0)
    own = cfg.gan.get("init", "random") != "melody"  # (under melody, the melody run's model.context_dim counts)
    conditioned = [n for n in validation.algorithm_names(cfg, supported()) if uses_encoder(n)]
    if own and conditioned and not cfg.model.generator.get("context_dim", 0):
        validation.raise_bad("model.generator.context_dim", cfg.model.generator.get("context_dim", 0),
                       f"> 0 when meta.algorithm includes {conditioned[0]} (it sets both players' style context)")
    for f in ("dim", "layers", "kernel"):
        check_range(f"model.critic.{f}", cfg.model.critic[f], 1)
    validation.algorithm_names(cfg, supported())
    check_range("meta.inner_steps", cfg.meta.inner_steps, 1)
    for f in ("g_inner_steps", "d_inner_steps"):
        check_range(f"meta.{f}", cfg.meta[f], 0, cfg.meta.inner_steps)
    validation.check_positive("meta.g_lr", cfg.meta.g_lr)
    validation.check_positive("meta.d_lr", cfg.meta.d_lr)
    check_range("optim.b1", cfg.optim.b1, 0, 1, integer=False)
    e, b = cfg.eval, cfg.baselines
    check_range("eval.steps", e.steps, 0)
    check_range("eval.samples", e.samples, 1)
    check_range("eval.val_tasks", e.val_tasks, 1)
    check_range("eval.distractors", e.distractors, 1)
    check_range("eval.two_sample_samples", e.two_sample_samples, 0)
    check_range("eval.two_sample_steps", e.two_sample_steps, 1)
    validation.check_positive("eval.temperature", e.temperature)
    for t in e.get("temperatures", ()):
        validation.check_positive("eval.temperatures (each)", t)
    check_range("baselines.joint_steps", b.joint_steps, 1)
    validation.check_positive("baselines.joint_lr", b.joint_lr)
    check_range("baselines.joint_batch_factor", b.joint_batch_factor, 1)
    check_range("baselines.tune_episodes", b.tune_episodes, 1)
    if "mle_steps" in b:
        check_range("baselines.mle_steps", b.mle_steps, 1)
        validation.check_positive("baselines.mle_lr", b.mle_lr)
    if not b.finetune_scales:
        validation.raise_bad("baselines.finetune_scales", b.finetune_scales, "a non-empty list of factors")
    for s in b.finetune_scales:
        validation.check_positive("baselines.finetune_scales (each)", s)
    check_range("generate.num", cfg.generate.num, 1)


def melody_run(workdir: str, corpus):
    """The melody experiment of a run_maml.py workdir, built on `corpus`; one clear error where there is no
    such run or it was trained with another token encoding. (The GAN's generator under gan.init=melody and
    the evaluation's melody-LM rows both read it.)"""
    if not workdir or not os.path.exists(os.path.join(workdir, "config.json")):
        raise MetamusicError(f"no run_maml.py run at eval.melody_workdir={workdir!r}")
    from metamusic.experiments import run_config  # (the package imports this module)

    mcfg = run_config(workdir, "melody")
    if inputs.encoding(mcfg) != corpus.enc:
        raise MetamusicError(f"{workdir} was trained with another token encoding than data.*")
    return melody.build(mcfg, corpus)


def melody_source(cfg, corpus):
    """(the melody experiment, its workdir) whose LM is the generator under gan.init="melody"; one clear error
    where that run is missing or cannot serve."""
    w = cfg.eval.melody_workdir
    fix = "train it first (python run_maml.py --config=configs/maml.py --workdir=DIR) or set gan.init=mle"
    from metamusic.experiments import ConfigFileError

    try:
        mexp = melody_run(w, corpus)
    except ConfigFileError as e:  # its own advice (restore the file), not "train it first"
        raise MetamusicError(f"eval.melody_workdir={w}: {e}") from None
    except MetamusicError as e:
        raise MetamusicError(f"gan.init=melody starts the generator from the melody LM of eval.melody_workdir, "
                             f"but {e}: {fix}") from None
    if not isinstance(mexp.model, LSTMLM):
        raise MetamusicError(f"gan.init=melody needs an LSTM melody LM, and {w} has "
                             f"model.name={mexp.cfg.model.name!r}: {fix}")
    return mexp, w


@dataclasses.dataclass(frozen=True)
class Game:
    """What the two players' functions read: the generator (the GAN's own LSTM, or the melody LM under
    gan.init=melody), the critic and their settings. The functions below take it first; `build` binds it."""

    classes: int  # melody token classes (one-hot width)
    bos: int
    tau: float  # Gumbel-softmax temperature
    z_dim: int
    mle_weight: float
    gen: object  # models.gan.Generator (unused under gan.init=melody)
    critic: object  # models.gan.Critic
    critic_pos: int  # bar-position codes the critic reads, 0: none
    lm: object = None  # the melody LM that is the generator under gan.init=melody, else None
    lm_bar: bool = False  # whether that LM reads bar positions
    prefix: int = 0  # real melody steps the generator reads teacher-forced before it free-runs (gan.prefix)

    @property
    def from_melody(self) -> bool:
        return self.lm is not None


def one_hot_inputs(game: Game, batch):
    """Real windows as the critic reads them: one-hot rows, PAD/BOS as zero vectors. (Bar positions are
    read by the melody-LM generator and, optionally, the critic.)"""
    return real_one_hots(game, *batch[:2])


def real_one_hots(game: Game, tok, mask):
    """One-hot rows of a window's melody tokens (zero rows on PAD and BOS)."""
    return jax.nn.one_hot(tok, game.classes) * valid_mask(tok, mask, game.classes)[..., None]


def lm_fakes(game: Game, gp, batch, key):
    """The melody LM from BOS into the real windows' slots 1..T-1, reading their bar positions (so it
    draws in the meter of the tunes it is compared with). Slots 1..gan.prefix are the real window's own
    tokens, read teacher-forced, and the LM free-runs after them: a real window is a crop from anywhere in
    a tune, so a fake drawn from BOS alone would be a tune opening, a difference a critic learns instead of
    style. Slot 0 is the real window's (BOS, masked out, or a copied first token: no cue either way). Its
    NLL is the melody LM's loss."""
    tok, mask, pos = batch
    C, lm = game.classes, game.lm
    noise = jax.random.gumbel(key, (tok.shape[0], tok.shape[1] - 1, C))
    forced = real_one_hots(game, tok[:, 1:], mask[:, 1:]) if game.prefix else None
    body = lm_generate(lm, gp, noise, pos[:, 1:] if game.lm_bar else None, bos=game.bos, tau=game.tau,
                       forced=forced, n_forced=game.prefix)
    fake = jnp.concatenate([jax.nn.one_hot(tok[:, :1], C) * (tok[:, :1] < C)[..., None], body], axis=1)
    nll = lm_loss(lm, gp, tok, mask, pos if game.lm_bar else None)[0] if game.mle_weight > 0 else jnp.zeros(())
    return fake * valid_mask(tok, mask, C)[..., None], nll


def generate_fakes(game: Game, gp, batch, key):
    """Generated windows shaped like the real `batch` (one-hot rows) and the generator's NLL of the real
    windows (zero when gan.mle_weight is 0)."""
    if game.from_melody:
        return lm_fakes(game, gp, batch, key)
    tok, mask = batch[:2]
    C = game.classes
    kz, kn = jax.random.split(key)
    z = jax.random.normal(kz, (tok.shape[0], game.z_dim))
    noise = jax.random.gumbel(kn, tok.shape + (C,))
    # slots 0..gan.prefix are the real window's (the own LSTM emits slot 0 too)
    forced = dict(forced=real_one_hots(game, tok, mask), n_forced=game.prefix + 1) if game.prefix else {}
    if game.mle_weight > 0:
        fake, logits = game.gen.apply(gp, z, noise, game.tau, tokens=tok, **forced)
        nll = masked_nll(logits, tok, mask, C)
    else:
        fake, nll = game.gen.apply(gp, z, noise, game.tau, **forced), jnp.zeros(())
    # fakes get the real windows' padding pattern, so padding is no cue to the critic
    return fake * valid_mask(tok, mask, C)[..., None], nll


def lm_log_prob(game: Game, gp, fake, batch):
    """Mean log-probability per free-run token of each fake window [N] under the melody LM, as it drew them
    (from BOS, the prefix read teacher-forced, over the melody classes only): REINFORCE's log p(fake)."""
    tok, mask, pos = batch
    C = game.classes
    drawn = jnp.argmax(fake[:, 1:], -1)  # slots 1..T-1, as lm_generate drew (or was forced) them
    inp = jnp.concatenate([jnp.full((tok.shape[0], 1), game.bos, drawn.dtype), drawn[:, :-1]], 1)
    logits = game.lm.apply(gp, inp, pos[:, 1:] if game.lm_bar else None)[..., :C]
    lp = jnp.take_along_axis(jax.nn.log_softmax(logits, -1), drawn[..., None], -1)[..., 0]
    free = valid_mask(tok, mask, C)[:, 1:] * (jnp.arange(1, tok.shape[1]) > game.prefix)
    return (lp * free).sum(-1) / jnp.maximum(free.sum(-1), 1.0)


def critic_scores(game: Game, dp, x, batch):
    """The critic's score of windows `x` (one-hot rows) in the slots of `batch`."""
    tok, mask = batch[:2]
    return game.critic.apply(dp, x, valid_mask(tok, mask, game.classes), batch[2] if game.critic_pos else None)


def generator_nll(game: Game, params, batch, key):
    """Teacher-forced NLL of the generator (the critic untouched): the `mle` baseline's loss."""
    tok, mask = batch[:2]
    if game.from_melody:
        nll = lm_loss(game.lm, params["g"], tok, mask, batch[2] if game.lm_bar else None)[0]
        return nll, {"g_nll": nll}
    z = jax.random.normal(key, (tok.shape[0], game.z_dim))
    nll = masked_nll(game.gen.apply(params["g"], z, tok, method=Generator.teacher_forced), tok, mask, game.classes)
    return nll, {"g_nll": nll}


def build(cfg, corpus) -> base.Experiment:
    enc = corpus.enc
    C = enc.num_classes
    g, d = cfg.model.generator, cfg.model.critic
    from_melody = cfg.gan.get("init", "random") == "melody"
    mexp = mw = None
    if from_melody:
        mexp, mw = melody_source(cfg, corpus)
        conditioned = [n for n in validation.algorithm_names(cfg, supported()) if uses_encoder(n)]
        if conditioned and not mexp.cfg.model.get("context_dim", 0):
            validation.raise_bad("meta.algorithm", cfg.meta.algorithm, f"without {conditioned[0]}: gan.init=melody "
                           f"conditions through the melody LM's context, and {mw} has model.context_dim=0")
    ctx = mexp.cfg.model.get("context_dim", 0) if from_melody else g.get("context_dim", 0)
    gen = Generator(enc.vocab_size, C, enc.bos, embed_dim=g.embed_dim, hidden=g.hidden, z_dim=g.z_dim,
                    context_dim=ctx)
    critic_pos = MAX_POS + 1 if d.get("bar_position", False) else 0  # (+1: the code of BOS and padding)
    critic = Critic(dim=d.dim, layers=d.layers, kernel=d.kernel, context_dim=ctx, bar_positions=critic_pos,
                    dilated=bool(d.get("dilated", False)))
    tau = float(cfg.gan.tau)
    lm = mexp.model if from_melody else None
    lm_bar = bool(from_melody and lm.bar_positions)

    game = Game(classes=C, bos=enc.bos, tau=tau, z_dim=g.z_dim, mle_weight=cfg.gan.mle_weight, gen=gen,
                critic=critic, critic_pos=critic_pos, lm=lm, lm_bar=lm_bar, prefix=int(cfg.gan.prefix))
    generate, score = functools.partial(generate_fakes, game), functools.partial(critic_scores, game)
    real_inputs = functools.partial(one_hot_inputs, game)

    loss_fn = adversarial.make_loss(generate, score, real_inputs, kind=cfg.gan.loss, gp_weight=cfg.gan.gp_weight,
                                    r1_weight=cfg.gan.r1_weight, drift=cfg.gan.drift,
                                    mle_weight=cfg.gan.mle_weight, adv_weight=cfg.gan.get("adv_weight", 1.0),
                                    r1_simplex=bool(cfg.gan.r1_simplex), estimator=cfg.gan.estimator,
                                    log_prob=functools.partial(lm_log_prob, game) if from_melody else None)

    melody_meta = {}  # method of the melody run -> its trained meta (read once; init_params is called often)

    def melody_trained(name):
        if name not in melody_meta:
            melody_meta[name] = base.restore(mexp, mw, name)
        return melody_meta[name]

    def init_params():
        T = cfg.data.length
        kg, kd = jax.random.split(jax.random.PRNGKey(cfg.seed))
        z = jnp.zeros((1, g.z_dim))
        gp = melody_trained(baselines.JOINT)["params"] if from_melody else gen.init(kg, z, jnp.zeros((1, T, C)))
        zeros = jnp.zeros((1, T), jnp.int32)
        return {"g": gp, "d": critic.init(kd, jnp.zeros((1, T, C)), jnp.ones((1, T)), zeros)}

    template = init_params() if from_melody else jax.eval_shape(init_params)  # (a restore cannot be traced)

    mle_loss = functools.partial(generator_nll, game)

    se = cfg.model.get("support_encoder", {"dim": 64, "layers": 3})
    if from_melody:  # the melody run's own encoder (same architecture, read as it was trained)
        support_encoder = mexp.parts.support_encoder
    else:
        support_encoder = SupportEncoder(enc.vocab_size, C, out_dim=max(ctx, 1), dim=se["dim"], layers=se["layers"])

    def encoder_init(name=None):
        """A fresh encoder; under gan.init=melody the encoder the melody run trained for method `name`
        where it has one."""
        if from_melody:
            if name in mexp.algorithms:
                return melody_trained(name)["encoder"]
            return mexp.parts.encoder_init()
        x = jnp.zeros((1, cfg.data.length), jnp.int32)
        return support_encoder.init(jax.random.PRNGKey(cfg.seed + 17), x, jnp.ones((1, cfg.data.length)))

    def condition(enc_params, params, support):
        """Both players with their style context set to the embedding of the support windows. The critic
        reads it through a stop-gradient (its own projection learns what to do with it), so the encoder is
        trained by the generator's losses only and never serves both sides of the game."""
        tok, mask = support[:2]
        if from_melody:
            e = support_encoder.apply(enc_params, tok, mask, support[2] if lm_bar else None)
            gp = melody.with_context(params["g"], e)
            e = e[None]
        else:
            e = support_encoder.apply(enc_params, tok, mask)[None]
        put = lambda p, v: {**p, "params": {**p["params"], "context": v.astype(p["params"]["context"].dtype)}}
        return {"g": gp if from_melody else put(params["g"], e), "d": put(params["d"], jax.lax.stop_gradient(e))}

    def start_params(name):
        """What method `name` starts from: init_params, except that under gan.init=melody the amortized
        meta-GAN's generator is the melody run's amortized LM (trained with the encoder it starts from)."""
        params = init_params()
        if from_melody and uses_encoder(name) and name in mexp.algorithms:
            params = {**params, "g": melody_trained(name)["params"]}
        return params

    def lrs(scale: float = 1.0):
        """Both players' inner lrs times `scale`; a schedule where the players adapt on their own steps
        (meta.g_inner_steps, meta.d_inner_steps), wherever the GAN adapts (meta-GANs, the fine-tuned joint GAN)."""
        g_lr, d_lr = cfg.meta.g_lr * scale, cfg.meta.d_lr * scale
        g_n, d_n = cfg.meta.g_inner_steps, cfg.meta.d_inner_steps
        if g_n or d_n:
            return adversarial.player_schedule(template, g_lr, d_lr, g_n, d_n)
        return adversarial.player_lrs(template, g_lr, d_lr)

    inner = InnerSpec(cfg.meta.inner_steps, lrs(), cfg.meta.remat)

    def algorithm(name):
        if name == MLE:
            return baselines.joint_algorithm(mle_loss, inner)
        if baselines.is_joint(name):
            return baselines.joint_algorithm(loss_fn, inner)
        hooks = Hooks(encoder_init=lambda: encoder_init(name), condition=condition)
        return make_algorithm(name, loss_fn, inner, hooks)

    def optimizer(name):
        if name == MLE:  # plain Adam: no adversary to balance
            return optim.make_optimizer(cfg.baselines.mle_lr, clip=cfg.optim.clip)
        return gan_game.optimizer(cfg, cfg.baselines.joint_lr if baselines.is_joint(name) else cfg.optim.lr)

    def train_steps(name):
        if name == MLE:
            return cfg.baselines.mle_steps
        return baselines.joint_steps(cfg) if baselines.is_joint(name) else cfg.steps

    def sample(g_params, num: int, length: int, key, temperature: float = 1.0, support=None):
        """Generated melodies as class tokens [num, length] (exact samples at temperature 1). A melody-LM
        generator is drawn by the melody models' own sampler, in the meter of the first support tune."""
        if from_melody:
            return mexp.sample(g_params, support, num=num, length=length + 1, temperature=temperature,
                                        key=key)[:, 1:]
        return sample_gan(gen, g_params, num=num, length=length, key=key, temperature=temperature)

    def draw(params, support, key):
        """generate.num melodies of data.length tokens, BOS first (as written to MIDI)."""
        toks = sample(params["g"], cfg.generate.num, cfg.data.length, key, support=support)
        return np.concatenate([np.full((len(toks), 1), enc.bos, np.int32), toks], 1)

    return base.Experiment(
        family="gan", cfg=cfg, corpus=corpus, loss_fn=loss_fn, init_params=init_params,
        algorithms=tuple(validation.algorithm_names(cfg, supported())), baselines=_baselines(cfg),
        algorithm=algorithm, optimizer=optimizer, train_steps=train_steps,
        train_sampler=lambda name: melody.task_sampler(cfg, corpus, name),
        val_eval=lambda name, algo: (melody.val_eval(cfg, corpus, algo, 0, _mle_metrics) if name == MLE else
                                     gan_game.val_eval(cfg, corpus, algo, loss_fn)),
        label=label, init_field="gan.init", model=lm if from_melody else gen, enc=enc,
        sample=sample, draw=draw, tuning=tuning, start_params=start_params,
        parts=GanParts(critic, lrs, mle_loss),
        start_from=lambda name: MLE if cfg.gan.get("init", "random") == "mle" and name != MLE else None)


def _baselines(cfg) -> tuple:
    """The joint GAN, and the MLE generator where the config has one (runs saved before it have not). Under
    gan.init=melody the melody run's joint model is the MLE generator (its row is the unadapted melody LM),
    so none is trained here."""
    own_mle = "mle_steps" in cfg.baselines and cfg.gan.get("init", "random") != "melody"
    return ((MLE,) if own_mle else ()) + (baselines.JOINT,)


def _mle_metrics(res) -> dict:
    return {"val/g_nll": res.query_aux["g_nll"].mean()}


def tuning(exp: base.Experiment, name: str = baselines.JOINT) -> baselines.Tuning:
    """Fine-tuning a trained baseline (the joint GAN by its GAN loss, the MLE generator by its likelihood):
    both players' inner lrs times a scale, `eval.steps` steps; the scale with the lowest generator NLL on
    meta-val query tunes after adapting."""
    cfg = exp.cfg
    sampler = TaskSampler(exp.corpus, exp.corpus.styles_in("val"), shots=cfg.data.shots, queries=cfg.data.queries,
                          length=cfg.data.length, pool="support/query")
    n = cfg.baselines.tune_episodes
    tasks = inputs.to_task(sampler.sample(np.random.default_rng([cfg.seed, 778]), n))
    keys = jax.random.split(jax.random.PRNGKey(cfg.seed + 2), n)

    def curve(meta, lr, steps):
        loss = exp.parts.mle_loss if name == MLE else exp.loss_fn
        algo = baselines.finetune_algorithm(loss, lr, steps, cfg.meta.remat)
        res = jax.jit(jax.vmap(lambda t, k: algo.adapt(meta, t.support, k, query=t.query)))(tasks, keys)
        return np.mean(np.asarray(res.query_aux["g_nll"]), 0)

    return baselines.Tuning(tuple(cfg.baselines.finetune_scales), exp.parts.lrs, cfg.eval.steps, False, curve)


FAMILY = Family("gan", validate, build, evaluator="metamusic.eval.gan_eval:evaluate", script="run_gan.py",
                sample_prefix="gan-")
