"""The meta-GAN end to end on a small synthetic corpus: meta steps, training, evaluation, generation."""

import json
import os

import jax
import numpy as np
import pytest

from configs import gan_tiny
from metamusic import baselines, experiments
from metamusic import checkpoints as ckpt_lib
from metamusic.errors import MetamusicError
from metamusic.eval import gan_eval
from metamusic.eval import quality_diversity as qd
from metamusic.experiments import base, gan
from metamusic.generate import generate
from metamusic.meta.outer import init_state
from metamusic.train.trainer import train


def _changed(a, b):
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_bad_loss_name_is_a_clear_error():
    cfg = gan_tiny.get_config()
    cfg.gan.loss = "lsgan"
    with pytest.raises(MetamusicError, match="gan.loss='lsgan' is not allowed.*ns.*hinge.*wgan-gp"):
        experiments.validate(cfg)


def test_per_player_inner_steps_are_checked_and_reach_the_inner_lrs(style_corpus):
    cfg = gan_tiny.get_config()
    cfg.meta.g_inner_steps = cfg.meta.inner_steps + 1
    with pytest.raises(MetamusicError, match="meta.g_inner_steps"):
        experiments.validate(cfg)
    cfg.meta.inner_steps, cfg.meta.d_inner_steps, cfg.meta.g_inner_steps = 3, 2, 1
    experiments.validate(cfg)
    exp = experiments.build(cfg, style_corpus)
    sched = exp.parts.lrs(0.5)(3)  # the schedule every adaptation of this GAN reads
    g, d = jax.tree.leaves(sched["g"])[0], jax.tree.leaves(sched["d"])[0]
    np.testing.assert_allclose(np.asarray(g), [0, 0, 0.5 * cfg.meta.g_lr])
    np.testing.assert_allclose(np.asarray(d), [0.5 * cfg.meta.d_lr] * 2 + [0])


@pytest.fixture(scope="module")
def trained(style_corpus, tmp_path_factory):
    cfg = gan_tiny.get_config()
    cfg.meta.algorithm = "reptile"  # the default config's variant; the DAWSON-style one: test_dawson_variant (slow)
    workdir = str(tmp_path_factory.mktemp("gan"))
    exp = experiments.build(cfg, style_corpus)
    for name in exp.methods:
        train(exp, workdir, name)
    return cfg, workdir


@pytest.mark.slow  # (the GAN's own LSTM, gan.init=mle; the default generator: test_gan_melody_init.py)
def test_training_logs_and_checkpoints(trained):
    cfg, workdir = trained
    for name in ("reptile", baselines.JOINT):
        rows = [json.loads(l) for l in open(os.path.join(workdir, name, "metrics.jsonl"))]
        assert [r["step"] for r in rows if "loss" in r] == [1, 2]
        assert all(np.isfinite(r["loss"]) for r in rows if "loss" in r)
        assert any("val/d_loss_after" in r for r in rows)
        assert os.path.isdir(os.path.join(workdir, name, "checkpoints", "2"))


@pytest.mark.slow  # (the GAN's own LSTM, gan.init=mle; the default generator: test_gan_melody_init.py)
def test_one_meta_step_changes_both_networks(trained, style_corpus, name="reptile"):
    cfg, workdir = trained
    exp = experiments.build(cfg, style_corpus)
    init = init_state(exp.algorithm(name), exp.optimizer(name), exp.init_params())
    mgr = ckpt_lib.manager(os.path.join(workdir, name), 1, 2)
    one = ckpt_lib.restore_step(mgr, 1, init)
    mgr.close()
    assert int(one.step) == 1
    assert _changed(init.meta["params"]["g"], one.meta["params"]["g"]) > 0
    assert _changed(init.meta["params"]["d"], one.meta["params"]["d"]) > 0
    # the inner loop moves both players too: each player's meta-val loss differs before/after adapting
    row = [json.loads(l) for l in open(os.path.join(workdir, name, "metrics.jsonl")) if "val/d_loss_after" in l][-1]
    assert row["val/d_loss_after"] != row["val/d_loss_before"]
    assert row["val/g_adv_after"] != row["val/g_adv_before"]


@pytest.mark.slow  # (the default generator's evaluation runs these checks: test_gan_melody_init.py)
def test_evaluation_compares_every_generator(trained, style_corpus):
    cfg, workdir = trained
    res = gan_eval.evaluate(experiments.build(cfg, style_corpus), workdir)
    joint, mle = gan.LABELS[baselines.JOINT], gan.LABELS[gan.MLE]
    generators = {gan.label("reptile"), joint, joint + ", fine-tuned", mle, mle + ", fine-tuned"}
    check_evaluation(res, cfg, workdir, generators, (baselines.JOINT, gan.MLE), gan.label("reptile"),
                     len(style_corpus.styles_in("test")))


def check_evaluation(res, cfg, workdir, generators: set, tuned: tuple, meta_gan: str, n_styles: int):
    """What every GAN evaluation must hold, K=2: the rows; the fine-tuning scales chosen on meta-val and
    saved; the temperature sweep and its matched reads; the pairing; the files."""
    rows = res["methods"]["K=2"]
    joint = gan.LABELS[baselines.JOINT]
    assert set(rows) == generators | {gan_eval.SUPPORT, gan_eval.HELD_OUT}
    for name, r in rows.items():
        if name != gan_eval.HELD_OUT:  # the mean over features is the mean of the per-feature values
            per = r["mgeval"]
            assert r["overlap_mean"] == pytest.approx(np.mean([v["overlap"] for v in per.values()]))
    # the trained baselines' fine-tuning scales were chosen on meta-val among the configured ones, and saved
    for name in tuned:
        scale = res["config"]["tuning"][f"{gan.label(name)}: fine-tuning lr scale (chosen on meta-val)"]
        assert scale in cfg.baselines.finetune_scales
        saved = json.load(open(os.path.join(workdir, name, "finetune.json")))
        assert saved["choice"]["lr"] == scale
    # the quality-diversity sweep: every generator sampled at every temperature; the table's row is the
    # curve's point at eval.temperature, and a matched value lies between the two points around it
    curves = res["curves"]["K=2"]
    assert set(curves) == generators
    temps = sorted(set(cfg.eval.temperatures) | {cfg.eval.temperature})
    for name, curve in curves.items():
        assert [c["temperature"] for c in curve] == temps
        at_table = next(c for c in curve if c["temperature"] == cfg.eval.temperature)
        assert at_table["overlap_mean"] == pytest.approx(rows[name]["overlap_mean"])
        m = res["matched"]["K=2"][name]
        for axis, target in (("diversity", 1.0), ("distinct_4grams", rows[gan_eval.HELD_OUT]["distinct_4grams"])):
            vals = [c[axis] for c in curve if np.isfinite(c[axis])]
            lo, hi = m[f"{axis}_range"]
            if vals:
                assert lo == min(vals) and hi == max(vals)
            v = m[f"overlap_mean_at_real_{axis}"]
            if v is not None:
                assert lo <= target <= hi
                assert min(c["overlap_mean"] for c in curve) <= v <= max(c["overlap_mean"] for c in curve)
    # paired over styles against the joint GAN: the mean difference is the difference of the tables' means
    d = res["paired"]["K=2"][meta_gan][joint]["overlap_mean"]
    assert d["episodes"] == n_styles
    assert d["mean"] == pytest.approx(rows[meta_gan]["overlap_mean"] - rows[joint]["overlap_mean"])
    for f in ("eval.json", "eval.md", "eval.png", "quality_diversity.png"):
        assert os.path.getsize(os.path.join(workdir, f)) > 0
    md = open(os.path.join(workdir, "eval.md")).read()
    assert "Closest to the target style" in md and "Quality at matched diversity" in md and "Paired differences" in md


@pytest.mark.slow  # (the GAN's own LSTM, gan.init=mle; the default generator: test_gan_melody_init.py)
def test_a_rows_figures_do_not_depend_on_the_other_rows(trained, style_corpus, tmp_path, monkeypatch):
    """Leaving methods out of the evaluation leaves every other row's figures exactly as they were: each
    style's sampling key is shared by all methods, not drawn per method position."""
    cfg, workdir = trained
    cfg = cfg.copy_and_resolve_references()
    cfg.eval.temperatures = ()
    exp = experiments.build(cfg, style_corpus)
    full = gan_eval.evaluate(exp, workdir)["methods"]["K=2"]
    keep = gan.label("reptile")
    original = gan_eval.gan_methods

    def only_reptile(exp, _out):  # the trained methods of the fixture's workdir; the tables go to tmp_path
        methods, notes = original(exp, workdir)
        return {keep: methods[keep]}, notes

    monkeypatch.setattr(gan_eval, "gan_methods", only_reptile)
    alone = gan_eval.evaluate(exp, str(tmp_path))["methods"]["K=2"]
    assert set(alone) == {keep, gan_eval.SUPPORT, gan_eval.HELD_OUT}
    for name in alone:
        assert json.dumps(alone[name], sort_keys=True) == json.dumps(full[name], sort_keys=True), name


def test_at_diversity_interpolates_where_the_curve_crosses_real_diversity():
    curve = [{"temperature": 0.8, "diversity": 0.6, "distinct_4grams": 0.70, "overlap_mean": 0.70},
             {"temperature": 1.0, "diversity": 0.8, "distinct_4grams": 0.80, "overlap_mean": 0.80},
             {"temperature": 1.2, "diversity": 1.2, "distinct_4grams": 0.90, "overlap_mean": 0.60}]
    assert qd.at_diversity(curve, "overlap_mean") == pytest.approx(0.70)  # halfway from 0.8 to 1.2
    assert qd.at_diversity(curve[:2], "overlap_mean") is None  # never as varied as real tunes
    assert qd.at_diversity(curve, "overlap_mean", 0.75, "distinct_4grams") == pytest.approx(0.75)
    m = qd.matched(curve, {"diversity": 1.0, "distinct_4grams": 0.75})
    assert m["diversity_range"] == [0.6, 1.2] and m["distinct_4grams_range"] == [0.7, 0.9]
    assert m["overlap_mean_at_real_distinct_4grams"] == pytest.approx(0.75)
    assert m["best_overlap_mean"] == {"value": 0.80, "temperature": 1.0, "diversity": 0.8, "distinct_4grams": 0.8}


def test_at_diversity_takes_the_crossing_nearest_the_tables_temperature():
    # a GAN-like curve: feature diversity 1.0 is crossed twice, at T=0.65 and T=1.05
    curve = [{"temperature": t, "diversity": d, "overlap_mean": q}
             for t, d, q in ((0.6, 0.9, 0.50), (0.7, 1.1, 0.60), (0.9, 1.3, 0.80), (1.0, 1.1, 0.85), (1.1, 0.9, 0.75))]
    assert qd.at_diversity(curve, "overlap_mean", around=1.0) == pytest.approx(0.80)
    assert qd.at_diversity(curve, "overlap_mean", around=0.6) == pytest.approx(0.55)


@pytest.mark.slow  # (the GAN's own LSTM, gan.init=mle; the default generator: test_gan_melody_init.py)
def test_generate_writes_midi_and_piano_rolls(trained, style_corpus, tmp_path):
    import note_seq

    cfg, workdir = trained
    style = style_corpus.styles_in("test")[0]
    exp = experiments.build(cfg, style_corpus)
    paths = []
    for method in ("reptile", baselines.JOINT, baselines.FINETUNE):
        paths += generate(exp, workdir, style=style, shots=2, out=str(tmp_path), method=method)
    assert len(paths) == 3 * cfg.generate.num and len(set(paths)) == len(paths)
    for p in paths:
        ns = note_seq.midi_file_to_note_sequence(p)
        assert len(ns.notes) > 0
        assert os.path.getsize(p[:-4] + ".png") > 0


def _support(corpus, style: str, cfg, seed: int):
    from metamusic.data.episodes import TaskSampler

    s = TaskSampler(corpus, [style], shots=cfg.data.shots, queries=1, length=cfg.data.length)
    t = s.sample(np.random.default_rng(seed), 1)
    return (jax.numpy.asarray(t[0][0]), jax.numpy.asarray(t[1][0]), jax.numpy.asarray(t[5][0]))


def test_conditioned_generator_changes_with_the_support_set(style_corpus):
    """The amortized meta-GAN adapts by one encoder call: another style's support set gives another
    generator (and critic), the same support set the same one, with no inner step."""
    cfg = gan_tiny.get_config()
    cfg.meta.algorithm, cfg.gan.init = "amortized", "random"
    exp = experiments.build(cfg, style_corpus)
    algo = exp.algorithm("amortized")
    meta = algo.init(exp.init_params())
    a, b = style_corpus.styles_in("train")[:2]
    key = jax.random.PRNGKey(0)

    def generated(sup):
        adapted = algo.adapt(meta, sup, key, steps=1).params
        return adapted, np.asarray(exp.sample(adapted["g"], 8, cfg.data.length, key))

    pa, ta = generated(_support(style_corpus, a, cfg, 1))
    pb, tb = generated(_support(style_corpus, b, cfg, 2))
    _, ta2 = generated(_support(style_corpus, a, cfg, 1))
    assert (ta == ta2).all()
    assert (ta != tb).any()  # untrained, the context moves a few tokens; its logits move everywhere:
    gen, z = exp.model, jax.random.normal(key, (8, cfg.model.generator.z_dim))
    la = gen.apply(pa["g"], z, jax.numpy.asarray(ta), method=type(gen).teacher_forced)
    lb = gen.apply(pb["g"], z, jax.numpy.asarray(ta), method=type(gen).teacher_forced)
    assert float(np.abs(np.asarray(la) - np.asarray(lb)).min()) > 0.0
    for player in ("g", "d"):
        ca, cb = pa[player]["params"]["context"], pb[player]["params"]["context"]
        assert float(np.abs(np.asarray(ca) - np.asarray(cb)).max()) > 1e-4
    # unconditioned (steps=0), the context stays the trained one
    same = algo.adapt(meta, _support(style_corpus, a, cfg, 1), key, steps=0).params
    assert _changed(same, meta["params"]) == 0.0


@pytest.mark.slow  # (the default generator's version: tests/train/test_gan_melody_init.py)
def test_dawson_meta_step_stays_finite_for_50_steps(style_corpus, tmp_path):
    """The DAWSON-style (first-order MAML) meta-GAN from the MLE generator: every one of 50 meta-steps
    finite (a non-finite one would be logged as such and skipped), and both players moved."""
    cfg = gan_tiny.get_config()
    cfg.meta.algorithm, cfg.steps, cfg.checkpoint_every, cfg.eval_every = "fomaml", 50, 50, 0
    exp = experiments.build(cfg, style_corpus)
    for name in (gan.MLE, "fomaml"):
        train(exp, str(tmp_path), name)
    rows = [json.loads(l) for l in open(os.path.join(tmp_path, "fomaml", "metrics.jsonl"))]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 50 and np.isfinite(losses).all()
    start = base.restore(exp, str(tmp_path), gan.MLE)["params"]
    end = base.restore(exp, str(tmp_path), "fomaml")["params"]
    assert np.isfinite([float(np.abs(x).max()) for x in jax.tree.leaves(end)]).all()
    assert _changed(start["g"], end["g"]) > 0 and _changed(start["d"], end["d"]) > 0


@pytest.mark.slow
def test_dawson_variant_changes_both_networks(style_corpus, tmp_path):
    cfg = gan_tiny.get_config()
    cfg.meta.algorithm = "fomaml"
    exp = experiments.build(cfg, style_corpus)
    for name in (gan.MLE, "fomaml"):  # (fomaml starts from the MLE generator, gan_tiny's gan.init=mle)
        train(exp, str(tmp_path), name)
    test_one_meta_step_changes_both_networks((cfg, str(tmp_path)), style_corpus, "fomaml")
