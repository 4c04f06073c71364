"""Relation network and prototypical baseline: scores, learning, evaluation, the style scorer."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import synth
from configs import relation as rel_cfg
from metamusic.data import EpisodeSampler
from metamusic.eval import classify
from metamusic.eval.style_fidelity import StyleScorer, style_fidelity
from metamusic.meta import episodic
from metamusic.meta.outer import init_state, make_outer_step
from metamusic.train import relation as rel


def _cfg(steps=150):
    c = rel_cfg.get_config()
    c.steps, c.batch, c.log_every, c.eval_every, c.checkpoint_every, c.progress = steps, 4, 50, 0, 50, False
    c.data.ways, c.data.shots, c.data.queries, c.data.length = 3, 2, 2, 24
    c.model.conv.dim, c.model.conv.layers = 32, 2
    c.model.relation_hidden = 32
    c.eval.shots, c.eval.episodes, c.eval.chunk, c.eval.val_episodes = (1, 2), 20, 10, 8
    return c


@pytest.fixture(scope="module")
def corpus():
    return synth.token_corpus()


def test_relation_scores_lie_in_unit_interval_and_labels_are_remapped(corpus):
    cfg = _cfg()
    s = rel.setup(cfg, corpus)
    _, _, state = rel.template_state(cfg, s, "relation")
    ep = EpisodeSampler(corpus, corpus.styles, ways=3, shots=2, queries=2, length=24).sample(
        np.random.default_rng(0), 1)
    ep1 = rel.to_device(ep)._replace(**{f: getattr(rel.to_device(ep), f)[0] for f in ep._fields})
    sc = episodic.relation_scores(s.embed, s.relate, state.meta["params"], ep1, 3)
    assert sc.shape == (6, 3) and float(sc.min()) >= 0 and float(sc.max()) <= 1
    assert list(np.asarray(ep1.support_labels)) == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("method", ["relation", "protonet"])
def test_loss_falls_on_a_separable_family(corpus, method):
    cfg = _cfg()
    s = rel.setup(cfg, corpus)
    algo, tx, state = rel.template_state(cfg, s, method)
    step = make_outer_step(algo, tx)
    sampler = EpisodeSampler(corpus, corpus.styles, ways=3, shots=2, queries=2, length=24)
    losses, accs = [], []
    for i in range(150):
        state, m = step(state, rel.to_device(sampler.sample(np.random.default_rng(i), 4)), jax.random.PRNGKey(i))
        losses.append(float(m["loss"]))
        accs.append(float(m["train/accuracy"]))
    assert np.mean(losses[-20:]) < 0.6 * np.mean(losses[:20])
    assert np.mean(accs[-20:]) > 0.8


@pytest.fixture(scope="module")
def relation_run(corpus, tmp_path_factory):
    cfg = _cfg(300)
    workdir = str(tmp_path_factory.mktemp("relation"))
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(cfg.to_json_best_effort())
    for m in rel.methods(cfg):
        rel.train(cfg, workdir, m, corpus)
    return cfg, workdir


def test_evaluation_beats_chance(corpus, relation_run):
    cfg, workdir = relation_run
    out = classify.evaluate(cfg, workdir, corpus)
    res = out["results"]["2-way 2-shot"]  # meta-test has 2 styles in this corpus
    assert res["chance"]["accuracy"] == 0.5
    for m in ("relation", "protonet", "histogram"):
        assert res[m]["accuracy"] > 0.8, (m, res[m])
        assert res[m]["episodes"] == cfg.eval.episodes
    assert os.path.getsize(os.path.join(workdir, "confusion.png")) > 1000
    assert "relation" in open(os.path.join(workdir, "eval.md")).read()


def test_style_scorer_on_styles_with_known_answers(corpus, relation_run):
    cfg, workdir = relation_run
    L = cfg.data.length
    by_style = [np.flatnonzero(corpus.style_of == k) for k in range(len(corpus.styles))]
    win = lambda idx: (np.stack([corpus.tune(i)[:L] for i in idx]).astype(np.int32),
                       np.ones((len(idx), L), np.float32))
    for method, own_min, other_max in (("protonet", 0.9, 0.1), ("relation", 0.9, 0.5)):
        scorer = StyleScorer(workdir, corpus, method)
        for a, b, c in ((0, 3, 6), (1, 4, 8), (2, 5, 9)):  # target, distractor, distractor
            target, d1, d2 = win(by_style[a][:2]), win(by_style[b][:2]), win(by_style[c][:2])  # K=2, as trained
            # held-out tunes of the target style are scored as the target ...
            assert style_fidelity(scorer, win(by_style[a][10:30]), target, [d1, d2]) >= own_min, method
            # ... and a distractor's tunes are not
            assert style_fidelity(scorer, win(by_style[b][10:30]), target, [d1, d2]) <= other_max, method


def test_maml_eval_reports_style_fidelity_of_samples(corpus, relation_run, tmp_path):
    from configs import maml_tiny
    from metamusic.eval import fewshot
    from metamusic.train import melody as mel

    _, scorer_dir = relation_run
    cfg = maml_tiny.get_config()
    cfg.eval.shots = (1,)
    cfg.data.length = 24
    cfg.eval.fidelity.scorer = scorer_dir
    cfg.eval.fidelity.shots, cfg.eval.fidelity.samples = 2, 4
    for name in mel.algorithms(cfg) + ["pretrain"]:
        mel.train(cfg, str(tmp_path), name, corpus)
    out = fewshot.evaluate(cfg, str(tmp_path), corpus)
    fid = out["style_fidelity"]
    assert set(fid) == {"fomaml", "joint", "finetune", "real tunes"}
    assert all(0.0 <= r["fidelity"] <= 1.0 and r["chance"] == 0.5 for r in fid.values())
    assert fid["real tunes"]["fidelity"] >= 0.75  # held-out real tunes: the scorer's ceiling
    assert "Style fidelity" in open(os.path.join(str(tmp_path), "eval.md")).read()


def test_classify_cli_scores_query_files_per_style(relation_run, tmp_path, capsys):
    from metamusic import cli

    cfg, workdir = relation_run
    rng = np.random.default_rng(3)
    for style, meter in (("jigs", "6/8"), ("waltzes", "3/4")):
        (tmp_path / "support" / style).mkdir(parents=True)
        synth.write_abc_book(str(tmp_path / "support" / style / "t.abc"), [synth.abc_tune(i, rng, meter) for i in (1, 2)])
    synth.write_midi(str(tmp_path / "q.mid"), seed=4)
    (tmp_path / "bad.mid").write_bytes(b"not midi")
    rc = cli.run_relation(cfg, workdir, "classify", support=str(tmp_path / "support"),
                          query=[str(tmp_path / "q.mid"), str(tmp_path / "bad.mid")])
    out, err = capsys.readouterr()
    assert rc == 0 and "q.mid" in out and "jigs" in out and "waltzes" in out
    scores = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("  ")]
    assert len(scores) == 2 and all(0.0 <= v <= 1.0 for v in scores)
    assert "bad.mid" in err  # the unreadable query is reported, not fatal
    assert cli.run_relation(cfg, workdir, "classify", support=None, query=[]) == 2
