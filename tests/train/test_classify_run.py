"""A trained classification run end to end: its evaluation, the style scorer, --mode=classify, folders as
meta-test, and the evaluation's encoder passes against every window encoded whole."""

import os

import jax
import numpy as np
import pytest

import synth
from metamusic import experiments
from metamusic.data import EpisodeSampler, features
from metamusic.eval import classify
from metamusic.eval.style_fidelity import StyleScorer, style_fidelity
from metamusic.experiments import base
from metamusic.experiments import classify as classify_exp
from metamusic.experiments import inputs
from metamusic.train.trainer import train
from train.test_classify_heads import _cfg


@pytest.fixture(scope="module")
def corpus():
    return synth.token_corpus()


@pytest.fixture(scope="module")
def relation_run(corpus, tmp_path_factory):
    cfg = _cfg(300)
    workdir = str(tmp_path_factory.mktemp("relation"))
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(cfg.to_json_best_effort())
    exp = experiments.build(cfg, corpus)
    for m in exp.methods:
        train(exp, workdir, m)
    return cfg, workdir


def test_evaluation_beats_chance(corpus, relation_run, closed_phases):
    cfg, workdir = relation_run
    out = classify.evaluate(experiments.build(cfg, corpus), workdir)
    # the meta-val choices, then each K, have a bar for their encoders (tokens encoded) and one for their feature
    # rows, each ending at its total
    meta_val = ["evaluate: style scorer on meta-val, encoders", "evaluate: regression L2s on meta-val, encoders",
                "evaluate: regression L2s on meta-val, feature rows"]
    assert [d for d, *_ in closed_phases] == meta_val + [f"evaluate: 2-way {k}-shot, {part}" for k in cfg.eval.shots
                                                         for part in ("encoders", "feature rows")]
    for desc, done, total in closed_phases:
        assert done > 0 and done == total, (desc, done, total)
    res = out["results"]["2-way 2-shot"]  # meta-test has 2 styles in this corpus
    assert res["chance"]["accuracy"] == 0.5
    for m in ("relation", "protonet", "histogram", "features+logreg", "protonet+logreg"):
        assert res[m]["accuracy"] > 0.8, (m, res[m])
        assert res[m]["episodes"] == cfg.eval.episodes
    assert out["features_l2"]["episodes"] == cfg.eval.tune_episodes != cfg.eval.val_tasks  # the L2s' own meta-val set
    assert os.path.getsize(os.path.join(workdir, "confusion.png")) > 1000
    # the confusion matrix is the row --mode=classify predicts with: the meta-val choice among the regressions and
    # the scorer's row
    import json

    from metamusic.eval.classify import predicting_row

    assert out["confusion_row"] in res
    scorer = json.load(open(os.path.join(workdir, "scorer.json")))
    assert out["confusion_row"] == predicting_row(out["features_l2"], scorer["row"],
                                                  scorer["val_accuracy"][scorer["row"]])[0]
    assert "relation" in open(os.path.join(workdir, "eval.md")).read()


def test_style_scorer_on_styles_with_known_answers(corpus, relation_run):
    cfg, workdir = relation_run
    L = cfg.data.length
    by_style = [np.flatnonzero(corpus.style_of == k) for k in range(len(corpus.styles))]
    win = lambda idx: (np.stack([corpus.tune(i)[:L] for i in idx]).astype(np.int32),
                       np.ones((len(idx), L), np.float32))
    for method, own_min, other_max in (("protonet", 0.9, 0.1), ("relation", 0.9, 0.5)):
        scorer = StyleScorer(workdir, corpus.enc, method)
        for a, b, c in ((0, 3, 6), (1, 4, 8), (2, 5, 9)):  # target, distractor, distractor
            target, d1, d2 = win(by_style[a][:2]), win(by_style[b][:2]), win(by_style[c][:2])  # K=2, as trained
            # held-out tunes of the target style are scored as the target ...
            assert style_fidelity(scorer, win(by_style[a][10:30]), target, [d1, d2]) >= own_min, method
            # ... and a distractor's tunes are not
            assert style_fidelity(scorer, win(by_style[b][10:30]), target, [d1, d2]) <= other_max, method


def test_style_scorer_leaves_out_support_windows_of_padding(corpus, relation_run):
    """Whole support tunes come as W windows each, the last ones all padding where a tune is short: the scorer
    leaves those out, so a style's prototype is its tunes' and the scores equal those without the padding."""
    cfg, workdir = relation_run
    L = cfg.data.length
    scorer = StyleScorer(workdir, corpus.enc, "protonet")
    win = lambda k, a, b: (np.stack([corpus.tune(i)[:L] for i in np.flatnonzero(corpus.style_of == k)[a:b]]
                                    ).astype(np.int32), np.ones((b - a, L), np.float32))
    support, query = [win(0, 0, 2), win(3, 0, 2)], win(0, 10, 20)
    padded = [(np.concatenate([t, np.full((3, L), corpus.enc.pad, np.int32)]),
               np.concatenate([m, np.zeros((3, L), np.float32)])) for t, m in support[:1]] + support[1:]
    ep = scorer.episode(padded, query)
    assert ep.support.shape[0] == 4 and float(np.asarray(ep.support_mask).sum(-1).min()) > 0
    np.testing.assert_allclose(scorer.scores(padded, query), scorer.scores(support, query), atol=1e-6)


@pytest.mark.slow  # 57-68 s; the scorer it uses is checked on known answers in the default run
def test_maml_eval_reports_style_fidelity_of_samples(corpus, relation_run, tmp_path):
    from configs import maml_tiny
    from metamusic.eval import fewshot

    _, scorer_dir = relation_run
    cfg = maml_tiny.get_config()
    cfg.eval.shots = (1,)
    cfg.data.length = 24
    cfg.eval.scorer = scorer_dir
    cfg.eval.fidelity_shots, cfg.eval.samples, cfg.eval.fidelity_draws = 2, 4, 2
    exp = experiments.build(cfg, corpus)
    for name in exp.methods:
        train(exp, str(tmp_path), name)
    out = fewshot.evaluate(exp, str(tmp_path))
    fid = out["style_fidelity"]
    assert set(fid) == {"fomaml", "joint", "finetune", "real tunes"}
    for r in fid.values():  # 2 meta-test styles x 2 draws x 4 samples: a style's share is a multiple of 1/8
        assert r["chance"] == 0.5 and r["samples"] == 16 and r["draws"] == 4
        assert all(abs(v * 8 - round(v * 8)) < 1e-9 for v in r["per_style"].values())
        assert r["fidelity"] == pytest.approx(np.mean(list(r["per_style"].values())))
    assert fid["real tunes"]["fidelity"] >= 0.75  # held-out real tunes: the scorer's ceiling
    for name in ("fomaml", "joint", "finetune"):  # paired with the real tunes on the same draws
        p = fid[name]["paired_vs_real"]
        assert p["episodes"] == 4
        assert p["mean"] == pytest.approx(fid[name]["fidelity"] - fid["real tunes"]["fidelity"])
        assert fid[name]["share_of_real"]["share"] == pytest.approx(fid[name]["fidelity"] / fid["real tunes"]["fidelity"])
    assert "Style fidelity" in open(os.path.join(str(tmp_path), "eval.md")).read()


def test_classify_cli_scores_query_files_per_style(relation_run, tmp_path, capsys, caplog):
    from metamusic import cli

    cfg, workdir = relation_run
    rng = np.random.default_rng(3)
    for style, meter in (("jigs", "6/8"), ("waltzes", "3/4")):
        (tmp_path / "support" / style).mkdir(parents=True)
        synth.write_abc_book(str(tmp_path / "support" / style / "t.abc"), [synth.abc_tune(i, rng, meter) for i in (1, 2)])
    # a tune in M:4/3 (music21 raises BadTimeSignatureError): skipped with its reason, as ingestion does
    (tmp_path / "support" / "jigs" / "odd.abc").write_text(synth.BAD_METER_ABC)
    synth.write_midi(str(tmp_path / "q.mid"), seed=4)
    (tmp_path / "bad.mid").write_bytes(b"not midi")
    (tmp_path / "queries").mkdir()
    synth.write_midi(str(tmp_path / "queries" / "q2.mid"), seed=5)
    # the support folder is read as a corpus folder is: a hidden folder is no style, links into another style's
    # folder (a folder, a file) are not followed, so each example belongs to the style whose folder holds it
    (tmp_path / "support" / ".git").mkdir()
    synth.write_abc_book(str(tmp_path / "support" / ".git" / "h.abc"), [synth.abc_tune(7, rng, "4/4")])
    os.symlink(str(tmp_path / "support" / "waltzes"), str(tmp_path / "support" / "jigs" / "more"))
    os.symlink(str(tmp_path / "support" / "jigs" / "t.abc"), str(tmp_path / "support" / "waltzes" / "borrowed.abc"))
    argv = [f"--workdir={workdir}", "--mode=classify", f"--support={tmp_path / 'support'}",
            f"--query={tmp_path / 'q.mid'}", f"--query={tmp_path / 'bad.mid'}", f"--query={tmp_path / 'queries'}",
            f"--out={tmp_path / 'out' / 'pred.csv'}"]
    rc = cli.main("run_relation.py", argv)
    out, err = capsys.readouterr()
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("scored by ")
    lines = lines[1:]
    assert lines[0].split() == ["tune", "predicted", "score", "jigs", "waltzes"]
    table = [line.split() for line in lines[1:3]]
    assert sorted(os.path.basename(r[0]) for r in table) == ["q.mid", "q2.mid"]  # a file and a folder of queries
    for name, predicted, score, jigs, waltzes in table:  # the prediction is the best-scoring style
        assert float(score) == max(float(jigs), float(waltzes)) == float({"jigs": jigs, "waltzes": waltzes}[predicted])
    with open(tmp_path / "out" / "pred.csv", newline="") as f:
        import csv

        assert [r for r in csv.reader(f)] == [lines[0].split()] + table
    assert "bad.mid" in err and "odd.abc" in err  # unreadable files are reported, not fatal
    assert "2 tunes classified (skipped: 1 query and 1 support files or tunes)" in out  # counted on their side
    assert "skipped (query) " + str(tmp_path / "bad.mid") in err and "skipped (support) " in err
    assert caplog.text.count("did not follow link") == 2 and "hidden folder" in caplog.text
    assert cli.main("run_relation.py", [f"--workdir={workdir}", "--mode=classify"]) == 2
    # a query folder without music, a support folder that is not there: one line naming it
    (tmp_path / "empty").mkdir()
    for flags, said in (([f"--support={tmp_path / 'support'}", f"--query={tmp_path / 'empty'}"], "no music files"),
                        ([f"--support={tmp_path / 'nowhere'}", f"--query={tmp_path / 'q.mid'}"], "no such folder"),
                        ([f"--support={tmp_path / 'support'}", f"--query={tmp_path / 'q.mid'}", f"--out={tmp_path}"],
                         "is a folder; give the path of a .csv file")):
        capsys.readouterr()
        assert cli.main("run_relation.py", [f"--workdir={workdir}", "--mode=classify"] + flags) == 2
        err = capsys.readouterr().err
        assert said in err and str(tmp_path) in err, err


def test_classify_leaves_out_a_style_folder_with_no_readable_tunes_and_names_it(relation_run, tmp_path, capsys):
    """A user's support folder often holds a style folder that gives nothing (drum tracks only, a file that is
    not MIDI, an empty folder): that style is left out and named, and the others are scored, as a corpus
    folder's unreadable styles are (before, the first such folder stopped the command)."""
    from metamusic import cli

    _, workdir = relation_run
    rng = np.random.default_rng(5)
    for style, meter in (("jigs", "6/8"), ("waltzes", "3/4")):
        (tmp_path / "support" / style).mkdir(parents=True)
        synth.write_abc_book(str(tmp_path / "support" / style / "t.abc"), [synth.abc_tune(i, rng, meter) for i in (1, 2)])
    (tmp_path / "support" / "broken").mkdir()
    (tmp_path / "support" / "broken" / "x.mid").write_bytes(b"not midi")
    (tmp_path / "support" / "empty").mkdir()
    synth.write_midi(str(tmp_path / "q.mid"), seed=4)
    argv = [f"--workdir={workdir}", "--mode=classify", f"--support={tmp_path / 'support'}",
            f"--query={tmp_path / 'q.mid'}", f"--out={tmp_path / 'pred.csv'}"]
    assert cli.main("run_relation.py", argv) == 0
    out, err = capsys.readouterr()
    header = next(line for line in out.splitlines() if line.startswith("tune"))
    assert header.split() == ["tune", "predicted", "score", "jigs", "waltzes"]
    assert f"{tmp_path / 'support' / 'broken'}: style left out, no readable tunes (1 music file(s))" in err
    assert f"{tmp_path / 'support' / 'empty'}: style left out" in err
    # one style left: no classification, one line saying so
    (tmp_path / "support" / "waltzes" / "t.abc").unlink()
    assert cli.main("run_relation.py", argv) == 2
    assert "needs at least 2 styles with readable tunes, found 1 (jigs)" in capsys.readouterr().err


def test_classify_uses_the_feature_regression_when_it_is_best_on_meta_val(relation_run, tmp_path):
    """--mode=classify scores with the run's best row on meta-val: the evaluation's chosen feature regression
    (fitted on the support tunes, as in the evaluation) when its meta-val accuracy beats the style scorer's,
    else the scorer."""
    import json
    import shutil

    from metamusic.data.files import read_tunes, windows
    from metamusic.eval.style_fidelity import StyleScorer, score_files

    _, workdir = relation_run
    run = tmp_path / "run"
    shutil.copytree(workdir, run, ignore=shutil.ignore_patterns("eval*", "scorer.json"))
    rng = np.random.default_rng(5)
    for folder, n in (("support", 3), ("queries", 4)):
        for style, meter in (("jigs", "6/8"), ("reels", "4/4")):
            (tmp_path / folder / style).mkdir(parents=True)
            synth.write_abc_book(str(tmp_path / folder / style / "t.abc"),
                                 [synth.abc_tune(i + 1, rng, meter, rests=False) for i in range(n)])

    def choose(regression_val, scorer_val, row="all+features", length=None, objective=features.LOGREG_OBJECTIVE):
        with open(run / "scorer.json", "w") as f:
            json.dump({"row": "protonet", "val_accuracy": {"protonet": scorer_val}}, f)
        with open(run / "eval.json", "w") as f:
            json.dump({"features_l2": {"best": row, "l2": {row: 30.0}, "val_accuracy": {row: {"30.0": regression_val}},
                                       **({"objective": objective} if objective else {})},
                       **({"config": {"length": length}} if length else {})}, f)
        return score_files(str(run), str(tmp_path / "support"), [str(tmp_path / "queries")])

    styles, scored, skipped, row = choose(0.9, 0.5)
    assert row == "all+features" and styles == ["jigs", "reels"] and skipped == {"query": [], "support": []} and len(scored) == 8
    # an evaluation before the regression's objective was recorded chose its L2 for another fit: the scorer's row
    assert choose(0.9, 0.5, objective=None)[3] == "protonet"
    probs = np.stack([p for _, p in scored])
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    _, by_scorer, _, row = choose(0.5, 0.9)
    assert row == "protonet" and not np.allclose(np.stack([p for _, p in by_scorer]), probs)
    # the hand-made regression alone: the evaluation's own fit (features.logreg_predict) on the same tunes
    _, scored, _, row = choose(0.9, 0.5, "features+logreg")
    scorer = StyleScorer(str(run))
    sup = []
    for st in ("jigs", "reels"):
        tunes, positions, _, _ = read_tunes([str(tmp_path / "support" / st)], scorer.enc)
        sup.append(windows(tunes, scorer.length, scorer.enc.pad, positions))
    tunes, positions, names, _ = read_tunes([str(tmp_path / "queries")], scorer.enc)
    ep = scorer.episode(sup, windows(tunes, scorer.length, scorer.enc.pad, positions))
    hs, hq = classify.hand_features(type(ep)(*(np.asarray(x)[None] for x in ep)), scorer.enc)
    expected = features.logreg_predict(hs, np.asarray(ep.support_labels)[None], hq, 2, l2=30.0)[0]
    got = np.stack([p for _, p in scored]).argmax(-1)
    np.testing.assert_array_equal(got, expected)
    truth = [0 if "jigs" in name else 1 for name in names]
    assert (got == truth).mean() >= 0.75  # bars of 12 and 16 steps, in windows of only data.length=24 steps

    def regression(length):  # the evaluation's regression on windows of `length` tokens, as probabilities
        scorer.length = length

        def at(folder):
            tunes, positions, _, _ = read_tunes([str(folder)], scorer.enc)
            return windows(tunes, length, scorer.enc.pad, positions)
        ep = scorer.episode([at(tmp_path / "support" / st) for st in ("jigs", "reels")], at(tmp_path / "queries"))
        hs, hq = classify.hand_features(type(ep)(*(np.asarray(x)[None] for x in ep)), scorer.enc)
        z = features.logreg_logits(hs, np.asarray(ep.support_labels)[None], hq, 2, l2=30.0)[0]
        z = np.exp(z - z.max(-1, keepdims=True))
        return z / z.sum(-1, keepdims=True)
    # a run evaluated on longer windows (eval.length) is read at that length
    assert max(len(t) for t in read_tunes([str(tmp_path / "queries")], scorer.enc)[0]) > 24
    _, scored_long, _, _ = choose(0.9, 0.5, "features+logreg", length=96)
    long = np.stack([p for _, p in scored_long])
    np.testing.assert_allclose(long, regression(96), rtol=1e-5, atol=1e-6)
    assert not np.allclose(long, regression(24), atol=1e-3)

    # one encoder's features alone (no hand-made block): the regression on what that encoder gives the tunes
    _, scored, _, row = choose(0.9, 0.5, "protonet+logreg")
    assert row == "protonet+logreg"
    ep1 = type(ep)(*(np.asarray(x)[None] for x in ep))
    ls, lq = classify.learned_features(scorer.exp, base.restore(scorer.exp, str(run), "protonet")["params"], ep1, 1)
    z = features.logreg_logits(np.asarray(ls, np.float64), np.asarray(ep.support_labels)[None],
                               np.asarray(lq, np.float64), 2, l2=30.0)[0]
    got = np.stack([p for _, p in scored])
    np.testing.assert_allclose(np.log(got) - np.log(got).mean(-1, keepdims=True), z - z.mean(-1, keepdims=True),
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, probs, atol=1e-3)  # not the hand-made regression's (nor every encoder's) answer


def test_eval_on_a_user_folder_of_meters_every_style_as_meta_test(corpus, relation_run, tmp_path):
    """A user's folder of style subfolders (eval.root): every style is meta-test. The styles differ
    only in meter (the same random-walk ABC generator), so the hand-made features with their
    bar-length histogram have a known answer; the learned rows were trained on pitch sets only."""
    cfg, workdir = relation_run
    rng = np.random.default_rng(7)
    for style, meter in (("polkas", "2/4"), ("reels", "4/4"), ("odd", "7/8"), ("jigs", "6/8")):
        (tmp_path / "theirs" / style).mkdir(parents=True)
        synth.write_abc_book(str(tmp_path / "theirs" / style / "book.abc"),
                             [synth.abc_tune(i + 1, rng, meter, rests=False) for i in range(8)])
    cfg = cfg.copy_and_resolve_references()
    cfg.eval.root, cfg.eval.min_tunes, cfg.data.cache_dir = str(tmp_path / "theirs"), 4, str(tmp_path / "cache")
    test = experiments.load_test_data(cfg, corpus)
    assert test.styles == ["jigs", "odd", "polkas", "reels"] and set(test.split_of.values()) == {"test"}
    out = classify.evaluate(experiments.build(cfg, corpus), workdir, test_corpus=test, name="eval_theirs")
    assert out["config"]["test_styles"] == test.styles and out["config"]["ways"] == 3
    assert out["config"]["seed"] == cfg.seed  # the episodes' seed, so runs compared across trainings share them
    res = out["results"]["3-way 2-shot"]
    # windows of 24 steps hold one to three bars: meter tells the styles apart, pitch content does not
    # (0.825 before the 24 tonal features, which are noise here, were added; 0.725 with them; chance 0.33;
    # 0.642 with the 25 rhythm features, which are noise here too; histogram 0.275)
    assert res["features+logreg"]["accuracy"] > 0.6 and res["histogram"]["accuracy"] < 0.6, res
    assert all(res[m]["episodes"] == cfg.eval.episodes for m in ("relation", "protonet", "histogram"))
    md = open(os.path.join(workdir, "eval_theirs.md")).read()
    assert (f"From {cfg.eval.root}: dropped 0 tunes seen in training (0 exact copies, 0 near copies); styles under "
            "eval.min_tunes: none." in md)
    assert out["config"]["dropped"]["tunes"] == 0
    assert os.path.getsize(os.path.join(workdir, "confusion_theirs.png")) > 1000


@pytest.mark.parametrize("encoder", ["conv", "transformer"])
def test_evaluation_features_of_distinct_windows_cut_to_their_length_equal_every_window_encoded_whole(corpus, encoder):
    """`learned_features` encodes each distinct window once, cut to a power-of-two width: the features must be
    those of encoding every window of every episode at its full width (padding masked in every layer)."""
    cfg = _cfg(algorithm="protonet")
    cfg.model.encoder, cfg.data.length = encoder, 128
    exp = experiments.build(cfg, corpus)
    params = exp.init_params()
    sampler = EpisodeSampler(corpus, corpus.styles_in("test"), ways=2, shots=3, queries=2, length=128,
                             pool="support/query")
    eps = sampler.sample(np.random.default_rng(0), 6)
    rng = np.random.default_rng(1)  # cut some windows short, so they fall in several widths
    real = rng.integers(3, 43, size=eps.support.shape[:2])
    cut = np.arange(128) >= real[..., None]
    eps = eps._replace(support=np.where(cut, corpus.enc.pad, eps.support), support_mask=np.where(cut, 0.0, eps.support_mask),
                       support_pos=np.where(cut, eps.support_pos[..., -1:], eps.support_pos))
    assert len(np.unique(classify.window_widths(eps.support_mask.sum(-1).ravel(), 128))) > 1
    fs, fq = classify.learned_features(exp, params, eps, chunk=2)
    embed = jax.vmap(lambda ep: (exp.parts.heads.embed(params, ep.support, ep.support_mask, ep.support_pos),
                                 exp.parts.heads.embed(params, ep.query, ep.query_mask, ep.query_pos)))
    ws, wq = embed(inputs.to_device(eps))
    np.testing.assert_allclose(fs, ws, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fq, wq, rtol=1e-4, atol=1e-5)
    first, inverse = classify.distinct_windows(eps.query.reshape(-1, 128), eps.query_mask.reshape(-1, 128),
                                               eps.query_pos.reshape(-1, 128))
    assert len(first) < len(inverse)  # 6 episodes over 2 test styles' query pools repeat tunes
    np.testing.assert_array_equal(eps.query.reshape(-1, 128)[first][inverse], eps.query.reshape(-1, 128))


def test_hand_features_of_distinct_windows_equal_every_window_computed(corpus):
    """`hand_features` computes each distinct window's features once: they must be every window's own."""
    sampler = EpisodeSampler(corpus, corpus.styles_in("test"), ways=2, shots=3, queries=2, length=48,
                             pool="support/query")
    eps = sampler.sample(np.random.default_rng(0), 6)
    first, inverse = classify.distinct_windows(*classify.all_windows(eps))
    assert len(first) < len(inverse)  # the episodes repeat tunes
    hs, hq = classify.hand_features(eps, corpus.enc)
    for got, tok, pos in ((hs, eps.support, eps.support_pos), (hq, eps.query, eps.query_pos)):
        assert got.shape == tok.shape[:2] + (features.FEATURE_DIM,)
        for b in range(tok.shape[0]):
            for i in range(tok.shape[1]):
                np.testing.assert_array_equal(got[b, i], features.tune_features(
                    tok[b, i], pos[b, i], corpus.enc.num_classes, corpus.enc.min_note))


def test_scorer_choice_on_features_encoded_once_equals_every_row_on_whole_episodes(corpus, relation_run):
    """`choose_scorer` runs each method's encoder once over the meta-val episodes and scores its rows on the
    features: every row's meta-val accuracy must be the one its own predictor gives on the episodes."""
    cfg, workdir = relation_run
    cfg = cfg.copy_and_resolve_references()
    cfg.eval.length = 3  # three tokens per tune: the rows err, each on its own tunes (whole tunes: all 1.0)
    exp = experiments.build(cfg, corpus)
    params = {m: base.restore(exp, workdir, m)["params"] for m in exp.algorithms}
    scorer = classify.choose_scorer(exp, params)
    assert len(set(scorer["val_accuracy"].values())) > 2 and max(scorer["val_accuracy"].values()) < 1.0
    eps, ways = classify_exp.val_episodes(cfg, corpus, 778, classify_exp.eval_length(cfg))
    assert sorted(scorer["val_accuracy"]) == sorted(classify.rows(exp, costly=False))
    for r, acc in scorer["val_accuracy"].items():
        pred = classify_exp.predicted(exp.parts.predictor(r, ways), params[classify.method_of(exp, r)], eps, 4)
        assert acc == float((pred == eps.query_labels).mean()), r


def test_eval_length_reads_whole_tunes_longer_than_the_training_windows(corpus, relation_run, monkeypatch):
    """eval.length: the evaluation's episodes (meta-val choices and meta-test) hold each tune up to that many
    tokens, so a conv encoder trained on windows of data.length reads whole tunes twice as long."""
    cfg, workdir = relation_run
    cfg = cfg.copy_and_resolve_references()
    cfg.eval.length, cfg.eval.shots = 2 * cfg.data.length, (1,)
    seen, encode = [], classify.learned_features

    def spy(exp, params, eps, chunk, *rest):
        seen.append((eps.support.shape[-1], eps.support_mask.sum(-1).max(), eps.query_mask.sum(-1).max()))
        return encode(exp, params, eps, chunk, *rest)
    monkeypatch.setattr(classify, "learned_features", spy)
    out = classify.evaluate(experiments.build(cfg, corpus), workdir, name="eval_long")  # eval.json stays as it was
    lengths = np.diff(corpus.offsets)
    assert lengths.max() > cfg.data.length and lengths.max() <= cfg.eval.length  # the corpus's tunes fit only here
    assert seen and out["config"]["length"] == cfg.eval.length
    for T, longest_support, longest_query in seen:  # meta-val choices and meta-test alike
        assert T == cfg.eval.length and cfg.data.length < longest_support <= lengths.max()
        assert cfg.data.length < longest_query <= lengths.max()
    for m in ("relation", "protonet"):
        assert out["results"]["2-way 1-shot"][m]["accuracy"] > 0.8, out["results"]


def test_eval_on_a_folder_leaves_out_a_k_too_few_styles_can_serve_and_says_so(corpus, relation_run, tmp_path):
    """Three styles, one of them small: at the K it cannot serve, fewer than data.ways styles remain, so that
    K is left out and named; the other K is evaluated and written, nothing stops after the work."""
    cfg, workdir = relation_run
    rng = np.random.default_rng(8)
    for style, meter, n in (("polkas", "2/4", 8), ("reels", "4/4", 8), ("odd", "7/8", 4)):
        (tmp_path / "theirs" / style).mkdir(parents=True)
        synth.write_abc_book(str(tmp_path / "theirs" / style / "book.abc"),
                             [synth.abc_tune(i + 1, rng, meter, rests=False) for i in range(n)])
    cfg = cfg.copy_and_resolve_references()
    cfg.eval.root, cfg.eval.min_tunes, cfg.data.cache_dir = str(tmp_path / "theirs"), 4, str(tmp_path / "cache")
    cfg.eval.shots = (1, 3)
    test = experiments.load_test_data(cfg, corpus)
    out = classify.evaluate(experiments.build(cfg, corpus), workdir, test_corpus=test, name="eval_small")
    assert list(out["results"]) == ["3-way 1-shot"] and "odd" in out["config"]["left_out"]["K=3"]
    md = open(os.path.join(workdir, "eval_small.md")).read()
    assert "Left out at K=3" in md and "this K is not evaluated" in md
    assert os.path.getsize(os.path.join(workdir, "confusion_small.png")) > 0  # at the largest K evaluated


def test_meta_val_check_predicts_in_chunks_of_eval_chunk_with_the_one_call_accuracy(corpus, monkeypatch):
    """The training's meta-val check sends at most eval.chunk episodes per call (a Transformer encoder over
    every meta-val tune at once outgrew the memory), and its accuracy is the one of predicting them all at once."""
    import types

    c = _cfg(algorithm="protonet")
    c.eval.chunk, c.eval.val_tasks = 3, 8
    exp = experiments.build(c, corpus)
    params = exp.init_params()
    sizes, to_device = [], inputs.to_device

    def recording(batch):
        sizes.append(len(batch[0]))
        return to_device(batch)

    monkeypatch.setattr(inputs, "to_device", recording)
    got = exp.val_eval("protonet", None)(types.SimpleNamespace(meta={"params": params}), 0)["val/accuracy"]
    monkeypatch.setattr(inputs, "to_device", to_device)
    assert sizes == [3, 3, 2]
    val = corpus.styles_in("val")
    ways = min(c.data.ways, len(val))
    eps = EpisodeSampler(corpus, val, ways=ways, shots=c.data.shots, queries=c.data.queries, length=c.data.length,
                         pool="support/query").sample(np.random.default_rng([c.seed, 777]), 8)
    pred = np.asarray(exp.parts.predictor("protonet", ways)(params, inputs.to_device(eps)))
    assert got == pytest.approx(float(np.mean(pred == eps.query_labels)), abs=1e-12)
