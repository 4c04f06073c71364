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
from metamusic.experiments import gan
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


@pytest.fixture(scope="module")
def trained(style_corpus, tmp_path_factory):
    cfg = gan_tiny.get_config()
    cfg.meta.algorithm = "reptile"  # the default config's variant; the DAWSON-style one: test_dawson_variant (slow)
    workdir = str(tmp_path_factory.mktemp("gan"))
    exp = experiments.build(cfg, style_corpus)
    for name in exp.methods:
        train(exp, workdir, name)
    return cfg, workdir


def test_training_logs_and_checkpoints(trained):
    cfg, workdir = trained
    for name in ("reptile", baselines.JOINT):
        rows = [json.loads(l) for l in open(os.path.join(workdir, name, "metrics.jsonl"))]
        assert [r["step"] for r in rows if "loss" in r] == [1, 2]
        assert all(np.isfinite(r["loss"]) for r in rows if "loss" in r)
        assert any("val/d_loss_after" in r for r in rows)
        assert os.path.isdir(os.path.join(workdir, name, "checkpoints", "2"))


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


def test_evaluation_compares_every_generator(trained, style_corpus):
    cfg, workdir = trained
    res = gan_eval.evaluate(experiments.build(cfg, style_corpus), workdir)
    rows = res["methods"]["K=2"]
    joint = gan.LABELS[baselines.JOINT]
    assert set(rows) == {gan.LABELS["reptile"], joint, joint + ", fine-tuned",
                         gan_eval.SUPPORT, gan_eval.HELD_OUT}
    for name, r in rows.items():
        if name != gan_eval.HELD_OUT:  # the mean over features is the mean of the per-feature values
            per = r["mgeval"]
            assert r["overlap_mean"] == pytest.approx(np.mean([v["overlap"] for v in per.values()]))
    # the fine-tuning scale was chosen on meta-val among the configured ones, and saved for generation
    scale = res["config"]["tuning"]["joint GAN fine-tuning lr scale (chosen on meta-val)"]
    assert scale in cfg.baselines.finetune_scales
    saved = json.load(open(os.path.join(workdir, baselines.JOINT, "finetune.json")))
    assert saved["choice"]["lr"] == scale
    for f in ("eval.json", "eval.md", "eval.png"):
        assert os.path.getsize(os.path.join(workdir, f)) > 0
    assert "Closest to the target style" in open(os.path.join(workdir, "eval.md")).read()


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


@pytest.mark.slow
def test_dawson_variant_changes_both_networks(style_corpus, tmp_path):
    cfg = gan_tiny.get_config()
    cfg.meta.algorithm = "fomaml"
    exp = experiments.build(cfg, style_corpus)
    train(exp, str(tmp_path), "fomaml")
    test_one_meta_step_changes_both_networks((cfg, str(tmp_path)), style_corpus, "fomaml")
