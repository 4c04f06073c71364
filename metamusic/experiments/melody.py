"""Melody language models meta-learned per style (the MAML family) and their baselines.

Loss: next-token NLL of a Flax LM (`models.MODELS`) on windows of a style's tunes.
Methods: every registered algorithm (`meta.registry.ALGORITHMS`) named in
`meta.algorithm`, plus the joint model (`baselines.JOINT`). Validation: mean query NLL
on fixed meta-val tasks before and after adapting. Fine-tuning and from-scratch
baselines are tuned on meta-val tasks at the middle K of `eval.shots`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple


import jax
import jax.numpy as jnp
import numpy as np

from metamusic import baselines, devices, progress
from metamusic.data import TaskSampler, melody, step_rng
from metamusic.errors import check_choice, check_range
from metamusic.eval.chunked import adapt_curves
from metamusic.experiments import base, inputs, masks, optim, validation
from metamusic.experiments.family import Family
from metamusic.meta.algorithm import InnerSpec
from metamusic.meta import registry
from metamusic.meta.registry import ALGORITHMS, Hooks, make_algorithm
from metamusic.models import LSTM_IMPLS, MODELS, lm_loss, make_model
from metamusic.models.incontext import with_prompt
from metamusic.models.encoders import SupportEncoder
from metamusic.models.sampling import sample_lm


class MelodyParts(NamedTuple):
    """What other families read of a melody experiment (the meta-GAN under gan.init=melody)."""

    support_encoder: object  # models.encoders.SupportEncoder of the amortized method
    encoder_init: Callable  # () -> fresh encoder params


INITS = ("random", "joint")  # where meta-training starts: a fresh init, or the trained joint model


def per_algorithm(cfg, name: str, field: str, default):
    """meta.per_algorithm.<name>.<field> when set, else `default` (the run-wide value)."""
    over = cfg.meta.get("per_algorithm", {}).get(name, {})
    return over.get(field, default)


def algorithm_options(cfg, name: str) -> dict:
    """The options of algorithm `name` set in meta.per_algorithm.<name> (the registry fills the rest)."""
    given = dict(cfg.meta.get("per_algorithm", {}).get(name, {}))
    return {k: v for k, v in given.items() if k not in registry.COMMON_OPTIONS}


def validate_per_algorithm(cfg) -> None:
    """meta.per_algorithm.<name>.<field>: a registered name; `steps` and `tune_windows` (>= 1) or one of
    the algorithm's own options (its registry entry's `options`, numbers of the default's type)."""
    for name, over in cfg.meta.get("per_algorithm", {}).items():
        check_choice("meta.per_algorithm (each name)", name, tuple(ALGORITHMS))
        allowed = tuple(registry.COMMON_OPTIONS) + tuple(ALGORITHMS[name].options)
        for field, value in over.items():
            check_choice(f"meta.per_algorithm.{name} (each field)", field, allowed)
            default = registry.option_default(name, field)
            where = f"meta.per_algorithm.{name}.{field}"
            if field in registry.COMMON_OPTIONS:
                check_range(where, value, 1)
            elif isinstance(default, float):
                validation.check_positive(where, value)
            else:
                check_range(where, value, 0)


def validate(cfg) -> None:
    validation.validate_loop(cfg)
    validation.validate_data(cfg)
    validation.validate_optim(cfg)
    check_choice("model.name", cfg.model.name, MODELS)
    lstm, tr = cfg.model.lstm, cfg.model.transformer
    check_choice("model.lstm.impl", lstm.impl, LSTM_IMPLS)
    for f in ("embed_dim", "hidden", "layers"):
        check_range(f"model.lstm.{f}", lstm[f], 1)
    for f in ("dim", "layers", "heads"):
        check_range(f"model.transformer.{f}", tr[f], 1)
    if tr.dim % tr.heads:
        validation.raise_bad("model.transformer.heads", tr.heads, f"a divisor of model.transformer.dim={tr.dim}")
    if cfg.model.name == "transformer":
        check_range("model.transformer.max_len", tr.max_len, max(cfg.data.length, cfg.generate.length))
    names = validation.algorithm_names(cfg, ALGORITHMS)
    check_range("model.context_dim", cfg.model.get("context_dim", 0), 0)
    for needs in names:
        if ALGORITHMS[needs].needs_context and not cfg.model.get("context_dim", 0):
            validation.raise_bad("model.context_dim", cfg.model.get("context_dim", 0),
                           f"> 0 when meta.algorithm includes {needs} (it sets the model's context vector)")
        if "prompt" in ALGORITHMS[needs].needs and not getattr(MODELS[cfg.model.name], "reads_prompt", False):
            readers = [n for n, c in MODELS.items() if getattr(c, "reads_prompt", False)]
            validation.raise_bad("model.name", cfg.model.name, f"one of {readers} when meta.algorithm includes "
                                 f"{needs} (it reads the support tunes as the model's prompt)")
    if "incontext" in cfg.model:
        ic = cfg.model.incontext
        for f in ("dim", "layers", "heads", "max_prompt_windows"):
            check_range(f"model.incontext.{f}", ic[f], 1)
        if ic.dim % ic.heads:
            validation.raise_bad("model.incontext.heads", ic.heads, f"a divisor of model.incontext.dim={ic.dim}")
        if cfg.model.name == "incontext":
            check_range("model.incontext.max_len", ic.max_len, max(cfg.data.length, cfg.generate.length))
    if "support_encoder" in cfg.model:
        check_range("model.support_encoder.dim", cfg.model.support_encoder.dim, 1)
        check_range("model.support_encoder.layers", cfg.model.support_encoder.layers, 1)
    m = cfg.meta
    check_choice("meta.init", m.init, INITS)
    check_range("meta.inner_steps", m.inner_steps, 1)
    validation.check_positive("meta.inner_lr", m.inner_lr)
    e = cfg.eval
    check_range("eval.steps", e.steps, 0)
    check_range("eval.episodes", e.episodes, 1)
    check_range("eval.chunk", e.chunk, 1)
    check_range("eval.tune_windows", e.get("tune_windows", 1), 1)
    check_range("data.tune_windows", cfg.data.get("tune_windows", 1), 1)
    validate_per_algorithm(cfg)
    for name in cfg.eval.get("finetune_after", ()):  # rows for those in meta.algorithm; others are skipped
        check_choice("eval.finetune_after (each)", name, tuple(ALGORITHMS))
    check_range("eval.val_tasks", e.val_tasks, 1)
    if "min_tunes" in e:
        check_range("eval.min_tunes", e.min_tunes, 2)
    check_range("eval.fidelity_shots", e.fidelity_shots, 1)
    check_range("eval.fidelity_draws", e.get("fidelity_draws", 1), 1)
    check_range("eval.samples", e.samples, 1)
    check_range("eval.distractors", e.distractors, 1)
    validation.check_positive("eval.temperature", e.temperature)
    validate_baselines(cfg)
    g = cfg.generate
    check_range("generate.num", g.num, 1)
    check_range("generate.length", g.length, 2)
    validation.check_positive("generate.temperature", g.temperature)
    check_range("generate.prime_steps", g.prime_steps, 0)


def validate_baselines(cfg) -> None:
    b = cfg.baselines
    check_range("baselines.joint_steps", b.joint_steps, 1)
    validation.check_positive("baselines.joint_lr", b.joint_lr)
    check_range("baselines.joint_batch_factor", b.joint_batch_factor, 1)
    check_range("baselines.tune_episodes", b.tune_episodes, 1)
    for f in (baselines.FINETUNE, baselines.SCRATCH):
        if not b[f"{f}_lrs"]:
            validation.raise_bad(f"baselines.{f}_lrs", b[f"{f}_lrs"], "a non-empty list of lrs")
        for lr in b[f"{f}_lrs"]:
            validation.check_positive(f"baselines.{f}_lrs (each)", lr)
        check_range(f"baselines.{f}_steps", b[f"{f}_steps"], 1)
    validation.check_positive("baselines.oracle_lr", b.oracle_lr)
    for lr in b.get("oracle_lrs", ()):
        validation.check_positive("baselines.oracle_lrs (each)", lr)
    for name in b.get("oracle_from", (baselines.JOINT,)):  # starts the run did not train are skipped
        check_choice("baselines.oracle_from (each)", name, (baselines.JOINT,) + tuple(ALGORITHMS))
    if baselines.JOINT not in b.get("oracle_from", (baselines.JOINT,)):
        validation.raise_bad("baselines.oracle_from", tuple(b.oracle_from),
                             "a list that includes joint (the start every run has)")
    check_range("baselines.oracle_patience", b.get("oracle_patience", 0), 0)
    check_range("baselines.oracle_fine_every", b.get("oracle_fine_every", 0), 0)
    check_range("baselines.oracle_fine_until", b.get("oracle_fine_until", 0), 0)
    check_range("baselines.oracle_steps", b.oracle_steps, 0)
    check_range("baselines.oracle_check_every", b.oracle_check_every, 1)
    check_range("baselines.oracle_batch", b.oracle_batch, 1)
    check_range("baselines.oracle_holdout", b.oracle_holdout, 0.0, 1.0, integer=False)
    if not 0 < b.oracle_holdout < 1:
        validation.raise_bad("baselines.oracle_holdout", b.oracle_holdout, "strictly between 0 and 1")


def build(cfg, corpus) -> base.Experiment:
    kwargs = dict(cfg.model.get(cfg.model.name, {}))  # the model's own settings: the section model.<name>
    bar = inputs.bar_positions(cfg)
    model = make_model(cfg.model.name, corpus.enc.vocab_size, bar_positions=bar,
                       context_dim=cfg.model.get("context_dim", 0),
                       context_output=cfg.model.get("context_output", False), **kwargs)

    def loss_fn(params, batch, key):
        tokens, mask, pos = batch
        return lm_loss(model, params, tokens, mask, pos if bar else None)

    def init_params():
        x = jnp.zeros((1, cfg.data.length - 1), jnp.int32)
        return model.init(jax.random.PRNGKey(cfg.seed), x, x if bar else None)

    inner = InnerSpec(cfg.meta.inner_steps, cfg.meta.inner_lr, cfg.meta.remat)
    ctx_dim = cfg.model.get("context_dim", 0)
    se = cfg.model.get("support_encoder", {"dim": 64, "layers": 3})
    # (built for every run, used only by amortized, which validation lets run only with context_dim > 0)
    support_encoder = SupportEncoder(corpus.enc.vocab_size, corpus.enc.num_classes, out_dim=max(ctx_dim, 1),
                                     dim=se["dim"], layers=se["layers"], bar_positions=bar)

    def encoder_init():
        x = jnp.zeros((1, cfg.data.length), jnp.int32)
        return support_encoder.init(jax.random.PRNGKey(cfg.seed + 17), x, jnp.ones((1, cfg.data.length)), x)

    def condition(enc_params, params, support):
        """params with their context set to the style embedding of the support windows."""
        tokens, mask, pos = support
        return with_context(params, support_encoder.apply(enc_params, tokens, mask, pos if bar else None))

    def prompt(params, support):
        """params that read the support windows (a style's tunes, whole) as their prompt (in-context)."""
        tokens, mask, pos = support
        return with_prompt(params, tokens, mask, pos, bos=corpus.enc.bos, max_windows=model.max_prompt_windows)

    hooks = Hooks(head_mask=masks.head_mask, context_mask=masks.context_mask, encoder_init=encoder_init,
                  condition=condition, prompt=prompt if getattr(model, "reads_prompt", False) else None)

    def algorithm(name):
        if baselines.is_joint(name):
            return baselines.joint_algorithm(loss_fn, InnerSpec(0, cfg.meta.inner_lr, cfg.meta.remat))
        return make_algorithm(name, loss_fn, inner, hooks, **algorithm_options(cfg, name))

    def optimizer(name):
        o = cfg.optim
        joint = baselines.is_joint(name)
        # an algorithm may prescribe its meta-lr schedule (MAML++: cosine); the others follow optim.schedule
        schedule = (ALGORITHMS[name].lr_schedule if name in ALGORITHMS else None) or o.schedule
        return optim.make_optimizer(cfg.baselines.joint_lr if joint else o.lr, clip=o.clip, schedule=schedule,
                                   steps=train_steps(name))

    def train_steps(name):
        return baselines.joint_steps(cfg) if baselines.is_joint(name) else per_algorithm(cfg, name, "steps", cfg.steps)

    def sample(params, support, *, num, length, temperature, key, prime_steps=0):
        """`num` melodies of `length` tokens (BOS first), in the meter of the first support tune (its bar
        length sets the generated bar positions), optionally opening with that tune's first prime_steps."""
        enc = corpus.enc
        tok, mask, pos = (np.asarray(x[0]) for x in support)
        real = mask > 0
        prime = tok[real][: 1 + prime_steps].astype(np.int32) if prime_steps > 0 else np.array([enc.bos], np.int32)
        positions = generated_positions(pos[real], len(prime), length) if bar else None
        return sample_lm(model, params, prime, num=num, length=length, temperature=temperature, key=key,
                         pad=enc.pad, bos=enc.bos, vocab_size=enc.vocab_size, positions=positions)

    def draw(params, support, key):
        """generate.num melodies of generate.length tokens (BOS first), optionally opening like the first support tune."""
        g = cfg.generate
        return sample(params, support, num=g.num, length=g.length, temperature=g.temperature, key=key,
                      prime_steps=g.prime_steps)

    exp = base.Experiment(
        family="melody", cfg=cfg, corpus=corpus, loss_fn=loss_fn, init_params=init_params,
        algorithms=tuple(validation.algorithm_names(cfg, ALGORITHMS)), baselines=(baselines.JOINT,),
        algorithm=algorithm, optimizer=optimizer, train_steps=train_steps,
        train_sampler=lambda name: task_sampler(cfg, corpus, name),
        val_eval=lambda name, algo: val_eval(cfg, corpus, algo, 0 if baselines.is_joint(name) else cfg.meta.inner_steps,
                                             _nll_metrics),
        model=model, enc=corpus.enc, sample=sample, draw=draw,
        tuning=lambda e, name=baselines.JOINT, shots=None: tuning(e, baselines.FINETUNE, shots=shots),
        tuning_after=lambda e, first, shots=None: tuning(e, baselines.FINETUNE, first, shots=shots),
        parts=MelodyParts(support_encoder, encoder_init),
        start_from=lambda name: baselines.JOINT if name in ALGORITHMS and cfg.meta.get("init") == "joint" else None)
    return exp


def with_context(params, context):
    """params (of a model with model.context_dim > 0) with the context vector replaced by `context` [C]."""
    inner = dict(params["params"])
    inner["context"] = {"embedding": context[None].astype(inner["context"]["embedding"].dtype)}
    return {**params, "params": inner}


def eval_tune_windows(cfg) -> int:
    """Windows per tune in evaluation episodes (meta-val, tuning, meta-test): 1 for runs made before the field."""
    return cfg.eval.get("tune_windows", 1)


def generated_positions(support_pos: np.ndarray, prime_len: int, length: int) -> np.ndarray:
    """The bar-position channel [length] of a generated melody: the prime's own positions, then counting on
    in the support tune's bar length (the bar it shows most often)."""
    spb = melody.steps_per_bar_of(support_pos)
    if prime_len <= 1:
        return melody.meter_positions(length, spb)
    head = support_pos[:prime_len].astype(np.int64)
    nxt = (int(head[-1]) + 1 + np.arange(length - prime_len)) % spb
    return np.concatenate([head, np.minimum(nxt, melody.MAX_POS - 1)]).astype(np.int32)


def train_tune_windows(cfg, name: str) -> int:
    """Windows per tune in method `name`'s training tasks: meta.per_algorithm.<name>.tune_windows when set,
    else data.tune_windows."""
    return per_algorithm(cfg, name, "tune_windows", cfg.data.get("tune_windows", 1))


def task_sampler(cfg, corpus, name: str):
    """step -> the meta-batch of training tasks (meta-train styles), drawn from (seed, step)."""
    sampler = TaskSampler(corpus, corpus.styles_in("train"), shots=cfg.data.shots, queries=cfg.data.queries,
                          length=cfg.data.length, transpose=cfg.data.transpose,
                          tune_windows=train_tune_windows(cfg, name))
    batch = cfg.meta.batch * (cfg.baselines.joint_batch_factor if baselines.is_joint(name) else 1)
    return lambda step: inputs.to_task(sampler.sample(step_rng(cfg.seed, step), batch))


def val_eval(cfg, corpus, algo, steps: int, metrics):
    """Fixed meta-val tasks (drawn once), adapted with `steps` inner steps; `metrics(result) -> dict`."""
    sampler = TaskSampler(corpus, corpus.styles_in("val"), shots=cfg.data.shots, queries=cfg.data.queries,
                          length=cfg.data.length, pool="support/query", tune_windows=eval_tune_windows(cfg))
    tasks = inputs.to_task(sampler.sample(np.random.default_rng([cfg.seed, 777]), cfg.eval.val_tasks))

    @jax.jit
    def curve(meta, keys):
        return jax.vmap(lambda t, k: algo.adapt(meta, t.support, k, query=t.query, steps=steps))(tasks, keys)

    def eval_fn(state, step):
        return metrics(curve(state.meta, jax.random.split(jax.random.PRNGKey(cfg.seed + 1), cfg.eval.val_tasks)))

    return eval_fn


def _nll_metrics(res) -> dict:
    q = res.query_losses.mean(0)
    return {"val/query_nll_before": q[0], "val/query_nll_after": q[-1]}


def episodes(cfg, corpus, split: str, shots: int, n: int, seed_tag: int, styles=None):
    """n tasks of `split`'s styles (or of `styles`): K support tunes from each style's support pool, queries
    from its query pool (each tune one window, or whole as eval.tune_windows windows)."""
    styles = corpus.styles_in(split) if styles is None else styles
    sampler = TaskSampler(corpus, styles, shots=shots, queries=cfg.data.queries,
                          length=cfg.data.length, pool="support/query", tune_windows=eval_tune_windows(cfg))
    return sampler.sample(np.random.default_rng([cfg.seed, seed_tag, shots]), n)


def tuning(exp: base.Experiment, kind: str, first=None, shots=None) -> baselines.Tuning:
    """How fine-tuning (kind 'finetune') or from-scratch training ('scratch') is tuned: SGD lr and steps with
    the lowest mean query NLL on meta-val episodes at K=`shots` (None: the middle K of eval.shots; how
    many steps suit one tune is not how many suit ten, `methods.tuned_shots`). With `first` (an
    algorithm), fine-tuning after `first` has adapted with eval.steps (the "<method>+finetune" rows), over
    the same lrs and steps."""
    cfg = exp.cfg
    middle = sorted(cfg.eval.shots)[len(cfg.eval.shots) // 2]
    k = middle if shots is None else shots
    tasks = episodes(cfg, exp.corpus, "val", k, cfg.baselines.tune_episodes, 1)

    def adapt(meta_and_lr, support, key, query=None, steps=None):
        """A candidate's adaptation with its lr an argument (not a constant): every lr shares one compile."""
        meta, lr = meta_and_lr
        if first is None:
            algo = baselines.finetune_algorithm(exp.loss_fn, lr, steps, cfg.meta.remat)
        else:
            algo = baselines.then_finetune(first, exp.loss_fn, lr, steps, cfg.meta.remat, cfg.eval.steps)
        return algo.adapt(meta, support, key, query=query, steps=steps)

    compiled = {}

    def curve(meta, lr, steps):
        nll, _ = adapt_curves(adapt, (meta, jnp.float32(lr)), tasks, steps, cfg.eval.chunk, cfg.seed, inputs.to_task,
                              devices.mesh_from_config(cfg), compiled=compiled)
        return nll.mean(0)

    lrs, steps = tuning_grid(cfg, kind)
    depends = () if first is None else ("eval.steps", cfg.eval.steps)
    if shots is not None:  # a per-K choice names its K (the one choice of older runs keeps its key)
        depends += ("shots", int(k))
    return baselines.Tuning(lrs, float, steps, True, curve, depends, units=tuning_units(cfg, kind, len(tasks[0])))


def tuning_grid(cfg, kind: str) -> tuple[tuple, int]:
    """(the lrs tried, the most SGD steps) of fine-tuning (kind 'finetune') or from-scratch training."""
    b = cfg.baselines
    if kind == baselines.FINETUNE:
        return tuple(b.finetune_lrs), b.finetune_steps
    return tuple(b.scratch_lrs), b.scratch_steps


def tuning_units(cfg, kind: str, episodes: int) -> int:
    """The work of one tuning in progress units: every lr's curve over `episodes` meta-val episodes."""
    lrs, steps = tuning_grid(cfg, kind)
    return len(lrs) * progress.curve_units(episodes, steps)


FAMILY = Family("melody", validate, build, evaluator="metamusic.eval.fewshot:evaluate", script="run_maml.py",
                cross_corpus=True)
