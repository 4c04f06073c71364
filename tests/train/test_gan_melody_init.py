"""The meta-GAN whose generator is the melody LM (gan.init="melody", the default): a tiny melody run is
trained first, then the GAN starts from it, trains, evaluates and generates."""

import json
import os

import jax
import numpy as np
import pytest

from configs import gan_tiny, maml_tiny
from metamusic import baselines, experiments
from metamusic.errors import MetamusicError
from metamusic.eval import gan_eval
from metamusic.experiments import base, gan
from metamusic.generate import generate
from metamusic.train.trainer import train
from train.test_gan_run import check_evaluation


def _changed(a, b):
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _support(corpus, style: str, cfg, seed: int):
    from metamusic.data.episodes import TaskSampler

    s = TaskSampler(corpus, [style], shots=cfg.data.shots, queries=1, length=cfg.data.length)
    t = s.sample(np.random.default_rng(seed), 1)
    return tuple(jax.numpy.asarray(x) for x in (t[0][0], t[1][0], t[5][0]))


@pytest.fixture(scope="module")
def melody_run(style_corpus, tmp_path_factory):
    """A tiny run_maml.py workdir holding the joint LM and the amortized method (style context of 4
    numbers). Their checkpoints are written at init with every weight perturbed (the context and its FiLM
    start at zero) rather than trained: what these tests check is that the GAN starts from exactly these
    weights, and training them would only add compile time (the melody runs are tested in test_melody_run)."""
    from metamusic import checkpoints
    from metamusic.meta.outer import init_state

    mcfg = maml_tiny.get_config()
    mcfg.model.context_dim, mcfg.meta.algorithm = 4, "amortized"
    workdir = str(tmp_path_factory.mktemp("maml"))
    mexp = experiments.build(mcfg, style_corpus)
    for i, name in enumerate(mexp.methods):
        state = init_state(mexp.algorithm(name), mexp.optimizer(name), mexp.init_params())
        leaves, tree = jax.tree.flatten(state.meta)
        keys = jax.random.split(jax.random.PRNGKey(i), len(leaves))
        meta = jax.tree.unflatten(tree, [a + 0.1 * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys)])
        mgr = checkpoints.manager(baselines.run_dir(workdir, name), 1, 1)
        checkpoints.save(mgr, 1, state.replace(meta=meta), force=True)
        mgr.close()
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(mcfg.to_json_best_effort())
    return mexp, workdir


def _gan_config(melody_workdir: str, algorithms: str):
    cfg = gan_tiny.get_config()
    cfg.gan.init, cfg.eval.melody_workdir, cfg.meta.algorithm = "melody", melody_workdir, algorithms
    experiments.validate(cfg)
    return cfg


@pytest.fixture(scope="module")
def gan_run(melody_run, style_corpus, tmp_path_factory):
    """The GAN from that run: DAWSON (first-order MAML) trained for 50 meta-steps (no meta-val pass: its
    compile would double the fixture's time), the joint GAN saved at its start (the melody joint LM and a
    fresh critic) for the evaluation's rows."""
    import dataclasses

    from metamusic import checkpoints
    from metamusic.meta.outer import init_state

    cfg = _gan_config(melody_run[1], "fomaml")
    cfg.steps, cfg.checkpoint_every = 50, 50
    exp = experiments.build(cfg, style_corpus)
    workdir = str(tmp_path_factory.mktemp("gan"))
    train(dataclasses.replace(exp, val_eval=lambda name, algo: None), workdir, "fomaml")
    j = baselines.JOINT
    mgr = checkpoints.manager(baselines.run_dir(workdir, j), 1, 1)
    checkpoints.save(mgr, 0, init_state(exp.algorithm(j), exp.optimizer(j), base.start_params(exp, workdir, j)),
                     force=True)
    mgr.close()
    return exp, workdir


@pytest.fixture(scope="module")
def amortized(melody_run, style_corpus):
    """The style-conditioned meta-GAN at its start (the melody run's amortized LM and encoder)."""
    exp = experiments.build(_gan_config(melody_run[1], "amortized"), style_corpus)
    return exp, exp.algorithm("amortized").init(base.start_params(exp, "", "amortized"))


def test_a_missing_melody_run_is_one_clear_error(style_corpus, tmp_path):
    cfg = gan_tiny.get_config()
    cfg.gan.init, cfg.eval.melody_workdir = "melody", str(tmp_path / "nothing")
    with pytest.raises(MetamusicError, match="gan.init=melody.*eval.melody_workdir=.*nothing.*set gan.init=mle"):
        experiments.build(cfg, style_corpus)


def test_generators_start_from_the_melody_run(gan_run, amortized, melody_run):
    """Every GAN's generator is the melody LM as that run trained it (the joint model; the amortized
    meta-GAN the amortized LM and its encoder); no MLE generator of the GAN's own is trained."""
    exp, _ = gan_run
    mexp, mworkdir = melody_run
    assert exp.methods == ("fomaml", baselines.JOINT)
    joint = base.restore(mexp, mworkdir, baselines.JOINT)["params"]
    trained = base.restore(mexp, mworkdir, "amortized")
    assert _changed(base.start_params(exp, "", "fomaml")["g"], joint) == 0.0
    assert _changed(base.start_params(exp, "", baselines.JOINT)["g"], joint) == 0.0
    start = amortized[1]
    assert _changed(start["params"]["g"], trained["params"]) == 0.0
    assert _changed(start["encoder"], trained["encoder"]) == 0.0


def test_dawson_meta_step_stays_finite_for_50_steps(gan_run, melody_run):
    """The DAWSON-style (first-order MAML) meta-GAN from the melody LM: every one of 50 meta-steps finite
    (a non-finite one would be logged as such and skipped), and both players moved from their start."""
    exp, workdir = gan_run
    rows = [json.loads(l) for l in open(os.path.join(workdir, "fomaml", "metrics.jsonl"))]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 50 and np.isfinite(losses).all()
    assert all(r["train/skipped"] == 0 for r in rows if "train/skipped" in r)
    start, end = base.start_params(exp, workdir, "fomaml"), base.restore(exp, workdir, "fomaml")["params"]
    assert np.isfinite([float(np.abs(x).max()) for x in jax.tree.leaves(end)]).all()
    assert _changed(start["g"], end["g"]) > 0 and _changed(start["d"], end["d"]) > 0


def test_conditioned_melody_generator_changes_with_the_support_set(amortized, style_corpus):
    """The amortized meta-GAN adapts by one encoder call into the melody LM's context: another style's
    support set gives other samples, the same support set the same ones."""
    exp, meta = amortized
    cfg, algo = exp.cfg, exp.algorithm("amortized")
    a, b = style_corpus.styles_in("train")[:2]
    key = jax.random.PRNGKey(0)

    def generated(sup):
        g = algo.adapt(meta, sup, key, steps=1).params["g"]
        return g, np.asarray(exp.sample(g, 16, cfg.data.length, key, support=sup))

    ga, ta = generated(_support(style_corpus, a, cfg, 1))
    gb, tb = generated(_support(style_corpus, b, cfg, 2))
    _, ta2 = generated(_support(style_corpus, a, cfg, 1))
    assert (ta == ta2).all() and (ta != tb).any()
    assert _changed(ga["params"]["context"], gb["params"]["context"]) > 1e-4
    assert ta.min() >= 0 and ta.max() < style_corpus.enc.num_classes  # melody classes only (no PAD, BOS)


def test_evaluation_and_generation_use_the_melody_generators(gan_run, style_corpus, tmp_path, closed_phases):
    import note_seq

    exp, workdir = gan_run
    res = gan_eval.evaluate(exp, workdir)
    # each K has a bar for its samples (style, method, temperature) and, where run, one for its two-sample tests,
    # each ending at the total it expected
    assert [d for d, *_ in closed_phases][:1] == [f"evaluate: K={exp.cfg.eval.shots[0]}, samples"]
    for desc, done, total in closed_phases:
        assert done > 0 and done == total, (desc, done, total)
    joint = gan.LABELS[baselines.JOINT]
    generators = {gan.label("fomaml"), joint, joint + ", fine-tuned", "melody LM, amortized adapted",
                  gan_eval.MELODY_JOINT}
    check_evaluation(res, exp.cfg, workdir, generators, (baselines.JOINT,), gan.label("fomaml"),
                     len(style_corpus.styles_in("test")))
    paths = generate(exp, workdir, style=style_corpus.styles_in("test")[0], shots=2, out=str(tmp_path),
                     method="fomaml")
    assert len(paths) == exp.cfg.generate.num
    assert all(len(note_seq.midi_file_to_note_sequence(p).notes) > 0 for p in paths)
