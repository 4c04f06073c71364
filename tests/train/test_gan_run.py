"""The meta-GAN end to end on a small synthetic corpus: meta steps, training, evaluation, generation."""

import json
import os

import jax
import numpy as np
import pytest

from configs import gan_tiny
from metamusic import cli
from metamusic.eval import gan_eval
from metamusic.generate import generate_gan
from metamusic.train import gan
from metamusic.train import checkpoint as ckpt_lib


@pytest.fixture(scope="module")
def setup(style_corpus):
    cfg = gan_tiny.get_config()
    return cfg, gan.setup(cfg, style_corpus)


def _changed(a, b):
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_bad_loss_name_is_a_clear_error(style_corpus):
    cfg = gan_tiny.get_config()
    cfg.gan.loss = "lsgan"
    with pytest.raises(Exception, match="gan.loss.*ns.*hinge.*wgan-gp"):
        gan.setup(cfg, style_corpus)


@pytest.fixture(scope="module")
def trained(style_corpus, tmp_path_factory):
    cfg = gan_tiny.get_config()
    workdir = str(tmp_path_factory.mktemp("gan"))
    for name in gan.algorithms(cfg) + ["pretrain"]:
        gan.train(cfg, workdir, name, style_corpus)
    return cfg, workdir


def test_training_logs_and_checkpoints(trained):
    cfg, workdir = trained
    for name in ("reptile", "fomaml", "pretrain"):
        rows = [json.loads(l) for l in open(os.path.join(workdir, name, "metrics.jsonl"))]
        assert [r["step"] for r in rows if "loss" in r] == [1, 2]
        assert all(np.isfinite(r["loss"]) for r in rows if "loss" in r)
        assert any("val/d_loss_after" in r for r in rows)
        assert os.path.isdir(os.path.join(workdir, name, "checkpoints", "2"))


@pytest.mark.parametrize("name", ["reptile", "fomaml"])
def test_one_meta_step_changes_both_networks(trained, style_corpus, name):
    cfg, workdir = trained
    s = gan.setup(cfg, style_corpus)
    _, _, init = gan.template_state(cfg, s, name)
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
    res = gan_eval.evaluate(cfg, workdir, style_corpus)
    rows = res["methods"]["K=2"]
    assert set(rows) == {gan.LABELS["reptile"], gan.LABELS["fomaml"], gan.LABELS["pretrain"],
                         gan.LABELS["pretrain"] + ", fine-tuned", gan_eval.SUPPORT, gan_eval.HELD_OUT}
    for name, r in rows.items():
        if name != gan_eval.HELD_OUT:
            assert 0.0 <= r["overlap_mean"] <= 1.0 + 1e-6 and r["kl_mean"] >= 0.0
        assert 0.0 <= r["validity"]["in_scale_ratio"] <= 1.0
    for f in ("eval.json", "eval.md", "eval.png"):
        assert os.path.getsize(os.path.join(workdir, f)) > 0
    assert "Closest to the target style" in open(os.path.join(workdir, "eval.md")).read()


def test_generate_writes_midi_and_piano_rolls(trained, style_corpus, tmp_path):
    import note_seq

    cfg, workdir = trained
    style = style_corpus.styles_in("test")[0]
    paths = generate_gan(cfg, workdir, style=style, shots=2, out=str(tmp_path), method="reptile",
                         corpus=style_corpus)
    assert len(paths) == cfg.generate.num
    for p in paths:
        ns = note_seq.midi_file_to_note_sequence(p)
        assert len(ns.notes) > 0
        assert os.path.getsize(p[:-4] + ".png") > 0


def test_cli_generate_without_style_is_a_clear_error(trained, capsys):
    cfg, workdir = trained
    cfg.data.root = "/nonexistent-corpus-root"  # the flag is checked before any corpus is read
    rc = cli.run_gan(cfg, workdir, "generate")
    assert rc == 2
    assert "--mode=generate needs --style" in capsys.readouterr().err
