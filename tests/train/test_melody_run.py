"""End to end on a small synthetic corpus: train, evaluate with baselines, generate MIDI."""

import json
import os
import wave

import numpy as np
import pytest

import synth
from configs import maml_tiny
from metamusic import baselines, experiments
from metamusic.eval import fewshot
from metamusic.generate import generate
from metamusic.train.trainer import train


@pytest.fixture(scope="module")
def run(style_corpus, tmp_path_factory):
    cfg = maml_tiny.get_config()
    cfg.eval.shots = (2,)
    workdir = str(tmp_path_factory.mktemp("run"))
    exp = experiments.build(cfg, style_corpus)
    for name in exp.methods:
        train(exp, workdir, name)
    return cfg, workdir


def test_training_logs_finite_metrics(run):
    cfg, workdir = run
    rows = [json.loads(l) for l in open(os.path.join(workdir, "fomaml", "metrics.jsonl"))]
    assert [r["step"] for r in rows if "loss" in r] == [2, 4, 6]
    assert all(np.isfinite(r["loss"]) for r in rows if "loss" in r)
    assert any("val/query_nll_after" in r for r in rows)


def test_evaluation_writes_results_for_every_method(run, style_corpus, closed_phases):
    cfg, workdir = run
    cfg = cfg.copy_and_resolve_references()
    cfg.eval.listen = 1
    cfg.eval.finetune_after = ("fomaml", "cavia")  # cavia is not trained in this run: no row
    cfg.eval.scorer = os.path.join(workdir, "no_relation_run")  # style fidelity: skipped with one line
    out = fewshot.evaluate(experiments.build(cfg, style_corpus), workdir)
    # every phase's bar ends at the total it expected: the units it declared are the work that was reported
    # (the ceiling fits' total revised as fits stopped early), so its ETA was computed against the real total
    assert [d for d, *_ in closed_phases] == ["evaluate: ceiling fits", "evaluate: tuning at K=2",
                                              "evaluate: K=2", "evaluate: listening clips"]
    for desc, done, total in closed_phases:
        assert done > 0 and done == total, (desc, done, total)
    assert "no run_relation.py run" in out["style_fidelity_note"] and "style_fidelity" not in out
    assert "Style fidelity: skipped" in open(os.path.join(workdir, "eval.md")).read()
    res = out["methods"]["K=2"]
    assert set(res) == {"fomaml", "fomaml+finetune", "joint", "finetune", "scratch", "oracle"}
    assert len(res["fomaml"]["nll_nats"]) == cfg.eval.steps + 1
    assert len(res["joint"]["nll_nats"]) == 1
    for r in res.values():
        assert r["episodes"] == cfg.eval.episodes
        assert np.all(np.isfinite(r["nll_nats"])) and np.all(np.array(r["nll_nats_ci95"]) > 0)
        np.testing.assert_allclose(np.array(r["nll_bits"]) * np.log(2), r["nll_nats"], rtol=1e-6)
    # the joint model's unadapted score is the fine-tuning curve's starting point. The two rows are
    # computed by different code paths (a plain evaluation, and step 0 of the adaptation scan), so
    # they agree only to float32 rounding, which depends on the CPU's instruction set and XLA's code
    # generation: compare with a tolerance of a few float32 ulps, not exactly.
    np.testing.assert_allclose(res["joint"]["nll_nats"][0], res["finetune"]["nll_nats"][0], rtol=1e-6)
    for f in ("eval.json", "eval.md", "eval.png"):
        assert os.path.getsize(os.path.join(workdir, f)) > 100
    # fine-tuning's lr and steps were chosen on meta-val among the configured ones, and saved for generation
    # at each K of eval.shots on its own (baselines.tune_per_k): saved per K, the key naming the K
    assert cfg.baselines.tune_per_k
    for k in cfg.eval.shots:
        ft = out["tuning"][f"K={k}"]["finetune"]
        assert ft["lr"] in cfg.baselines.finetune_lrs and 1 <= ft["steps"] <= cfg.baselines.finetune_steps
        assert len(out["methods"][f"K={k}"]["finetune"]["nll_nats"]) == ft["steps"] + 1
        saved = json.load(open(os.path.join(workdir, baselines.JOINT, f"finetune_K{k}.json")))
        assert saved["choice"]["lr"] == ft["lr"] and saved["choice"]["steps"] == ft["steps"]
        assert saved["key"][-1] == ["shots", k]
    ft = out["tuning"]["K=2"]["finetune"]
    # a row adapting to K tunes uses the choice of the nearest evaluated K (K=1 tunes on its own episodes)
    from metamusic.experiments.methods import adapter, tuned_shots

    both = cfg.copy_and_resolve_references()
    both.eval.shots = (1, 2, 10)
    exp_both = experiments.build(both, style_corpus)
    assert [tuned_shots(exp_both, k) for k in (None, 1, 2, 3, 5, 6, 7, 40)] == [2, 1, 2, 2, 2, 2, 10, 10]
    one = adapter(exp_both, workdir, "finetune", shots=1)
    saved1 = json.load(open(os.path.join(workdir, baselines.JOINT, "finetune_K1.json")))
    assert saved1["key"][-1] == ["shots", 1] and one.choice.steps == saved1["choice"]["steps"]
    assert adapter(exp_both, workdir, "finetune", shots=3).choice.summary() == ft  # K=2's saved choice
    # "fomaml+finetune": FOMAML's adaptation, then fine-tuning with its own lr and steps chosen on meta-val;
    # its curve starts where FOMAML's row ends (same episodes, same adaptation)
    then = out["tuning"]["K=2"]["fomaml+finetune"]
    assert then["lr"] in cfg.baselines.finetune_lrs and 1 <= then["steps"] <= cfg.baselines.finetune_steps
    assert len(res["fomaml+finetune"]["nll_nats"]) == then["steps"] + 1
    np.testing.assert_allclose(res["fomaml+finetune"]["nll_nats"][0], res["fomaml"]["nll_nats"][-1], rtol=1e-5)
    assert res["fomaml+finetune"]["nll_nats"][-1] != res["fomaml+finetune"]["nll_nats"][0]
    saved = json.load(open(os.path.join(workdir, "fomaml", "finetune_K2.json")))
    assert saved["choice"]["lr"] == then["lr"] and saved["choice"]["steps"] == then["steps"]
    # the choice depends on FOMAML's own steps before fine-tuning: other eval.steps tune again, not reuse it
    other = cfg.copy_and_resolve_references()
    other.eval.steps = 1
    adapter(experiments.build(other, style_corpus), workdir, "fomaml+finetune", shots=2)
    key = json.load(open(os.path.join(workdir, "fomaml", "finetune_K2.json")))["key"]
    assert key[-1] == ["eval.steps", 1, "shots", 2]
    assert saved["key"][-1] == ["eval.steps", cfg.eval.steps, "shots", 2]
    # the oracle: one fit per meta-test style, never worse on its held-out support tunes than the joint model
    oracle = out["tuning"]["oracle"]
    assert set(oracle) == set(style_corpus.styles_in("test"))
    for rec in oracle.values():
        assert min(rec["held_nll"]) <= rec["held_nll"][0] and rec["held_tunes"] >= 1
        # the winner is the best member on the held-out support-pool tunes, over every start and lr tried
        assert len(rec["members"]) == len(cfg.baselines.oracle_lrs)  # starts: joint only (fomaml conditions nothing)
        assert rec["held_nll_best"] == min(m["held_nll"] for m in rec["members"].values())
        assert rec["members"][rec["member"]]["held_nll"] == rec["held_nll_best"]
    # every method is paired with the baselines over all the evaluation's episodes (the statistics
    # themselves are checked on known answers in tests/eval/test_paired.py)
    for name, r in res.items():
        assert {r["paired"]["vs_joint"]["episodes"], r["paired"]["vs_finetune"]["episodes"]} == {cfg.eval.episodes}
    assert "minus joint" in open(os.path.join(workdir, "eval.md")).read()
    # a few samples per meta-test style and method (and one real tune), to listen to in TensorBoard
    test = style_corpus.styles_in("test")
    n_methods = len(res) - 2  # every method but scratch and the oracle samples
    assert out["listen"]["clips"] == len(test) * (1 + n_methods * cfg.eval.listen)
    audio, images = _tensorboard_media(out["listen"]["tensorboard"])
    assert len(audio) == len(images) == out["listen"]["clips"]
    assert {t.split("/")[0] for t in audio} == set(test)
    assert all(a.sample_rate == 16000 and a.length_frames > 16000 for a in audio.values())
    assert all(im.height > 100 and im.width > 300 for im in images.values())


def _tensorboard_media(logdir):
    """tag -> audio and tag -> image summaries of the event files in `logdir` (TFRecord framing read by hand)."""
    import struct

    from tensorboardX.proto import event_pb2

    audio, images = {}, {}
    for name in os.listdir(logdir):
        with open(os.path.join(logdir, name), "rb") as f:
            while header := f.read(12):
                (length,) = struct.unpack("<Q", header[:8])
                ev = event_pb2.Event.FromString(f.read(length))
                f.read(4)
                for v in ev.summary.value:
                    if v.HasField("audio"):
                        audio[v.tag] = v.audio
                    if v.HasField("image"):
                        images[v.tag] = v.image
    return audio, images


def test_generation_writes_midi_that_note_seq_reads(run, style_corpus, tmp_path):
    from note_seq import midi_io

    cfg, workdir = run
    exp = experiments.build(cfg, style_corpus)
    paths = generate(exp, workdir, style="reels", shots=2, out=str(tmp_path / "a"))
    folder = tmp_path / "mine"
    folder.mkdir()
    rng = np.random.default_rng(5)
    synth.write_abc_book(str(folder / "t.abc"), [synth.abc_tune(i, rng, "9/8") for i in range(1, 4)])
    synth.write_midi(str(folder / "m.mid"), seed=3)
    # a tune in M:4/3, which music21 cannot read: skipped like ingestion skips it, not a crash
    (folder / "odd.abc").write_text(synth.BAD_METER_ABC)
    cfg = cfg.copy_and_resolve_references()
    cfg.generate.prime_steps = 4
    cfg.eval.finetune_after = ("fomaml",)
    exp = experiments.build(cfg, style_corpus)
    for method in (baselines.JOINT, baselines.FINETUNE, "fomaml+finetune"):
        paths += generate(exp, workdir, style=str(folder), shots=3, out=str(tmp_path / "b"), method=method)
    assert len(paths) == 4 * cfg.generate.num
    # generation conditions on whole support tunes, as evaluation episodes take them (eval.tune_windows)
    from metamusic.generate import support_for

    T = cfg.data.length
    one = support_for(str(folder), style_corpus, 3, T, np.random.default_rng(0))
    whole = support_for(str(folder), style_corpus, 3, T, np.random.default_rng(0), tune_windows=4)
    assert one[0].shape == (3, T) and 3 < whole[0].shape[0] <= 12
    assert whole[1][:, 1:].sum() > one[1][:, 1:].sum()  # more scored transitions from the same tunes
    np.testing.assert_array_equal(whole[0][0], one[0][0])  # the first tune's opening window comes first
    for p in paths:
        ns = midi_io.midi_file_to_note_sequence(p)
        assert len(ns.notes) > 0
        assert all(style_corpus.enc.min_note <= n.pitch < style_corpus.enc.max_note for n in ns.notes)
        assert os.path.getsize(p[:-4] + ".png") > 1000
        with wave.open(p[:-4] + ".wav") as w:  # the melody as sound, as long as the MIDI file
            assert abs(w.getnframes() / w.getframerate() - ns.total_time) < 1.0


def test_meta_training_can_start_from_the_joint_model(run, style_corpus, tmp_path):
    import shutil

    import jax

    from metamusic.errors import MetamusicError
    from metamusic.experiments import base

    cfg, workdir = run
    cfg = cfg.copy_and_resolve_references()
    cfg.meta.init, cfg.steps = "joint", 2
    exp = experiments.build(cfg, style_corpus)
    assert exp.methods[0] == baselines.JOINT  # trained before the algorithms that start from it
    wd = str(tmp_path / "w")
    with pytest.raises(MetamusicError, match="fomaml starts from the trained joint model .*meta.init=random"):
        base.start_params(exp, wd, "fomaml")  # no joint model trained there yet
    shutil.copytree(os.path.join(workdir, baselines.JOINT), os.path.join(wd, baselines.JOINT))
    joint = base.restore(exp, wd, baselines.JOINT)["params"]
    dist = lambda a, b: max(float(np.abs(x - y).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    np.testing.assert_array_equal(jax.tree.leaves(base.start_params(exp, wd, "fomaml"))[0], jax.tree.leaves(joint)[0])
    train(exp, wd, "fomaml")
    meta = base.restore(exp, wd, "fomaml")["params"]
    # an Adam step moves each parameter by at most about the lr: two steps from the joint model stay within
    # 2 lr of it, and out of reach of the fresh init (which the joint model left by 6 steps of its own)
    bound = 2 * cfg.optim.lr * 1.01
    assert 0 < dist(meta, joint) <= bound < dist(meta, exp.init_params())


def test_one_algorithm_can_train_longer_on_whole_tunes(run, style_corpus, tmp_path):
    """meta.per_algorithm.<name> sets that algorithm's steps and windows per tune, and no other's."""
    from metamusic.experiments import melody

    cfg, _ = run
    cfg = cfg.copy_and_resolve_references()
    cfg.meta.per_algorithm = {"fomaml": {"steps": 4, "tune_windows": 2}}
    cfg.meta.init = "random"
    exp = experiments.build(cfg, style_corpus)
    assert exp.train_steps("fomaml") == 4 and exp.train_steps(baselines.JOINT) == cfg.baselines.joint_steps
    whole = melody.task_sampler(cfg, style_corpus, "fomaml")(0)
    single = melody.task_sampler(cfg, style_corpus, baselines.JOINT)(0)
    K, T = cfg.data.shots, cfg.data.length
    assert whole.support[0].shape == (cfg.meta.batch, 2 * K, T) and single.support[0].shape == (cfg.meta.batch, K, T)
    # the two windows of a tune join up: the second starts with the first's last token
    w = np.asarray(whole.support[0]).reshape(cfg.meta.batch, K, 2, T)
    m = np.asarray(whole.support[1]).reshape(cfg.meta.batch, K, 2, T)
    both = m[:, :, 1, 1] > 0
    assert both.any() and (w[:, :, 1, 0] == w[:, :, 0, -1])[both].all()
    wd = str(tmp_path / "w")
    train(exp, wd, "fomaml")
    rows = [json.loads(l) for l in open(os.path.join(wd, "fomaml", "metrics.jsonl"))]
    assert [r["step"] for r in rows if "loss" in r] == [2, 4]


def test_eval_on_a_user_folder_scores_its_styles_and_drops_tunes_seen_in_training(run, style_corpus, tmp_path):
    import shutil

    cfg, workdir = run
    folder = synth.make_style_corpus(str(tmp_path / "theirs"), n_tunes=8, seed=3)
    book = next(m["path"] for m in style_corpus.meta if m["path"].endswith(os.path.join("waltz", "book.abc")))
    shutil.copy(book, os.path.join(folder, "waltz", "copied.abc"))  # 12 tunes the run trained or was tuned on
    os.makedirs(os.path.join(folder, "tiny"))  # a style under eval.min_tunes: left out, and named in the outputs
    synth.write_abc_book(os.path.join(folder, "tiny", "two.abc"),
                         [synth.abc_tune(900 + i, np.random.default_rng(i), "3/4") for i in range(2)])
    cfg = cfg.copy_and_resolve_references()
    cfg.eval.root, cfg.eval.min_tunes, cfg.data.cache_dir = folder, 4, str(tmp_path / "cache")
    test = experiments.load_test_data(cfg, style_corpus)
    assert test.styles == ["jigs", "odd", "reels", "waltz"] and set(test.split_of.values()) == {"test"}
    seen = sum(m["path"] == book for m in style_corpus.meta)
    assert test.report["dropped"]["duplicates"] == seen == 12
    train_hashes = {m["hash"] for m in style_corpus.meta}
    assert not any(m["hash"] in train_hashes for m in test.meta)
    out = fewshot.evaluate(experiments.build(cfg, style_corpus), workdir, test_corpus=test, name="eval_theirs")
    assert out["config"]["test_styles"] == test.styles and out["config"]["dropped"]["duplicates"] == 12
    assert set(out["tuning"]["oracle"]) == set(test.styles)
    res = out["methods"]["K=2"]
    assert res["fomaml"]["episodes"] == cfg.eval.episodes and np.all(np.isfinite(res["oracle"]["nll_nats"]))
    md = open(os.path.join(workdir, "eval_theirs.md")).read()
    assert out["config"]["dropped"]["styles"] == {"tiny": 2}
    assert (f"From {folder}: dropped 12 tunes seen in training (12 exact copies, 0 near copies); styles under "
            "eval.min_tunes: tiny (2 tunes)." in md)


def test_generation_from_a_folder_names_every_skipped_file(style_corpus, tmp_path, caplog):
    import logging

    from metamusic.generate import support_for

    folder = tmp_path / "mine"
    folder.mkdir()
    rng = np.random.default_rng(5)
    synth.write_abc_book(str(folder / "t.abc"), [synth.abc_tune(i, rng, "6/8") for i in range(1, 4)])
    (folder / "odd.abc").write_text(synth.BAD_METER_ABC)
    (folder / "broken.mid").write_bytes(b"not midi")
    with caplog.at_level(logging.WARNING, logger="metamusic.generate"):
        sup = support_for(str(folder), style_corpus, 2, 16, np.random.default_rng(0))
    assert sup[0].shape[0] == 2  # enough readable tunes remain, and the skips are still named
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "broken.mid" in said and "odd.abc" in said


def test_generated_midi_declares_the_meter_and_pickup_the_sampler_used(run, style_corpus, tmp_path):
    """Samples are written in the support tunes' meter (not always 4/4): read back, the MIDI's time signature
    is theirs, and a primed opening keeps its bar position under the declared bar lines."""
    import note_seq

    from metamusic.data import melody as mel
    from metamusic.experiments.melody import generated_positions
    from metamusic.generate import sample_meter, support_for

    cfg, workdir = run
    folder = tmp_path / "sevens"
    folder.mkdir()
    rng = np.random.default_rng(2)
    synth.write_abc_book(str(folder / "odd.abc"), [synth.abc_tune(i, rng, "7/8", "odd") for i in range(1, 5)])
    cfg = cfg.copy_and_resolve_references()
    cfg.generate.prime_steps = 3
    exp = experiments.build(cfg, style_corpus)
    for style, want in ((str(folder), (7, 8)), ("jigs", (6, 8))):
        paths = generate(exp, workdir, style=style, shots=2, out=str(tmp_path / "out"), method="fomaml")
        declared = []
        sup = support_for(style, style_corpus, 2, cfg.data.length, np.random.default_rng(cfg.generate.seed),
                          cfg.eval.get("tune_windows", 1), meters=declared)
        meter, offset = sample_meter(exp, sup, declared)
        assert meter == want
        spq = style_corpus.enc.steps_per_quarter
        for p in paths:
            ns = note_seq.midi_file_to_note_sequence(p)
            ts = ns.time_signatures[0]
            assert (ts.numerator, ts.denominator) == want and ts.time == 0
            # every note starts where the sampler's bar-position channel put its token: under the declared bar
            # lines, its onset step within the bar is that token's position
            spb = want[0] * 4 * spq // want[1]
            tok, mask, pos = (np.asarray(x[0]) for x in sup)
            channel = generated_positions(pos[mask > 0], 1 + cfg.generate.prime_steps, cfg.generate.length)
            onsets = sorted({round(n.start_time * ns.tempos[0].qpm / 60 * spq) for n in ns.notes})
            bos = int(pos[mask > 0][0] == mel.NO_POS)  # the sample's first token: BOS, or the prime's first event
            assert onsets and all(s % spb == channel[s - offset + bos] for s in onsets), (onsets, offset, channel)


def test_eval_on_a_folder_with_a_small_style_and_names_that_are_not_utf8(run, style_corpus, tmp_path):
    """A user folder (named in latin-1, not UTF-8) with one small style whose name is not UTF-8 either:
    each K is scored on the styles that can serve it, the others are named in eval.json and the report,
    nothing stops after the work, and the markdown escapes the bytes instead of failing half-written."""
    cfg, workdir = run
    folder = synth.make_style_corpus(str(tmp_path / "tmp"), n_tunes=8, seed=5)
    rng = np.random.default_rng(9)
    small = os.path.join(os.fsencode(folder), b"tiny-\xff")
    os.makedirs(small)
    synth.write_abc_book(os.path.join(os.fsdecode(small), "t.abc"), [synth.abc_tune(i, rng, "2/4") for i in range(1, 5)])
    root = os.path.join(os.fsencode(str(tmp_path)), b"th\xe9irs")
    os.rename(os.fsencode(folder), root)
    cfg = cfg.copy_and_resolve_references()
    cfg.eval.root, cfg.eval.min_tunes, cfg.data.cache_dir = os.fsdecode(root), 4, str(tmp_path / "cache")
    cfg.eval.shots = (1, 3)
    test = experiments.load_test_data(cfg, style_corpus)
    assert "tiny-\udcff" in test.styles  # the name as the file system gives it (surrogate-escaped)
    name = "eval_" + os.path.basename(cfg.eval.root)
    out = fewshot.evaluate(experiments.build(cfg, style_corpus), workdir, test_corpus=test, name=name)
    left = out["config"]["left_out"]
    assert "tiny-\udcff" in left["K=3"] and "K=1" not in left and set(out["methods"]) == {"K=1", "K=3"}
    md = open(os.path.join(workdir, name + ".md"), encoding="utf-8").read()
    assert "Left out at K=3" in md and "tiny-\\udcff (" in md and "minus joint" in md
