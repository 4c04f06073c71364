"""End to end on a small synthetic corpus: train, evaluate with baselines, generate MIDI."""

import json
import os

import numpy as np
import pytest

import synth
from configs import maml_tiny
from metamusic.eval import fewshot
from metamusic.generate import generate
from metamusic.train import melody as mel


@pytest.fixture(scope="module")
def run(style_corpus, tmp_path_factory):
    cfg = maml_tiny.get_config()
    cfg.eval.shots = (2,)
    workdir = str(tmp_path_factory.mktemp("run"))
    for name in mel.algorithms(cfg) + ["pretrain"]:
        mel.train(cfg, workdir, name, style_corpus)
    return cfg, workdir


def test_training_logs_finite_metrics(run):
    cfg, workdir = run
    rows = [json.loads(l) for l in open(os.path.join(workdir, "fomaml", "metrics.jsonl"))]
    assert [r["step"] for r in rows if "loss" in r] == [2, 4, 6]
    assert all(np.isfinite(r["loss"]) for r in rows if "loss" in r)
    assert any("val/query_nll_after" in r for r in rows)


def test_evaluation_writes_results_for_every_method(run, style_corpus):
    cfg, workdir = run
    out = fewshot.evaluate(cfg, workdir, style_corpus)
    res = out["methods"]["K=2"]
    assert set(res) == {"fomaml", "joint", "finetune", "scratch"}
    assert len(res["fomaml"]["nll_nats"]) == cfg.eval.steps + 1
    assert len(res["joint"]["nll_nats"]) == 1
    for r in res.values():
        assert r["episodes"] == cfg.eval.episodes
        assert np.all(np.isfinite(r["nll_nats"])) and np.all(np.array(r["nll_nats_ci95"]) > 0)
        np.testing.assert_allclose(np.array(r["nll_bits"]) * np.log(2), r["nll_nats"], rtol=1e-6)
    # the joint model's unadapted score is the fine-tuning curve's starting point
    assert res["joint"]["nll_nats"][0] == res["finetune"]["nll_nats"][0]
    for f in ("eval.json", "eval.md", "eval.png"):
        assert os.path.getsize(os.path.join(workdir, f)) > 100


def test_generation_writes_midi_that_note_seq_reads(run, style_corpus, tmp_path):
    from note_seq import midi_io

    cfg, workdir = run
    paths = generate(cfg, workdir, style="reels", shots=2, out=str(tmp_path / "a"), corpus=style_corpus)
    folder = tmp_path / "mine"
    folder.mkdir()
    rng = np.random.default_rng(5)
    synth.write_abc_book(str(folder / "t.abc"), [synth.abc_tune(i, rng, "9/8") for i in range(1, 4)])
    synth.write_midi(str(folder / "m.mid"), seed=3)
    cfg.generate.prime_steps = 4
    paths += generate(cfg, workdir, style=str(folder), shots=3, out=str(tmp_path / "b"), corpus=style_corpus)
    assert len(paths) == 2 * cfg.generate.num
    for p in paths:
        ns = midi_io.midi_file_to_note_sequence(p)
        assert len(ns.notes) > 0
        assert all(style_corpus.enc.min_note <= n.pitch < style_corpus.enc.max_note for n in ns.notes)
        assert os.path.getsize(p[:-4] + ".png") > 1000
