"""Classification rows over training seeds (eval.seed_spread): the spread, the rows meta-val chose, and runs
evaluated on other episodes refused."""

import json

import pytest

from metamusic.errors import MetamusicError
from metamusic.eval import seed_spread

CONFIG = {"seed": 0, "ways": 5, "shots": [1, 5], "episodes": 600, "queries": 5, "length": 1024,
          "test_styles": ["a", "b", "c", "d", "e"], "bar_position": True, "corpus": "training corpus's meta-test"}


def _run(tmp_path, name, acc5, best, best_learned, relation_vs_proto, **config):
    res = {"config": {**CONFIG, **config},
           "scorer": {"row": "protonet"},
           "features_l2": {"best": best, "best_learned": best_learned},
           "results": {"5-way 1-shot": {"protonet": {"accuracy": 0.7}},
                       "5-way 5-shot": {row: {"accuracy": a} for row, a in acc5.items()}},
           "paired_vs_protonet": {"5-way 5-shot": {"relation": {"mean": relation_vs_proto, "ci95": 0.006}}}}
    d = tmp_path / name
    d.mkdir()
    (d / "eval.json").write_text(json.dumps(res))
    return str(d)


def _three(tmp_path):
    return [_run(tmp_path, "s0", {"protonet": 0.774, "r2d2+logreg": 0.803, "all+logreg": 0.782, "relation": 0.738},
                 "r2d2+features", "all+logreg", -0.036),
            _run(tmp_path, "s1", {"protonet": 0.760, "r2d2+logreg": 0.765, "all+logreg": 0.790, "relation": 0.740},
                 "r2d2+features", "r2d2+logreg", -0.020),
            _run(tmp_path, "s2", {"protonet": 0.770, "r2d2+logreg": 0.783, "all+logreg": 0.770, "relation": 0.735,
                                  "extra": 0.5},
                 "r2d2+features", "all+logreg", -0.035)]


def test_spread_over_runs_with_a_t_interval_and_the_rows_meta_val_chose(tmp_path):
    runs = _three(tmp_path)
    res = seed_spread.spread({r: seed_spread.load(r) for r in runs})
    rows = res["settings"]["5-way 5-shot"]
    assert "extra" not in rows  # a row one run lacks is left out
    st = rows["r2d2+logreg"]
    # mean 0.7837, sample sd 0.01901, t(0.975, 2 df) = 4.3027: half-width 4.3027 * 0.01901 / sqrt(3) = 0.04722
    assert st["mean"] == pytest.approx(0.78367, abs=1e-5)
    assert st["sd"] == pytest.approx(0.019009, abs=1e-5)
    assert st["ci95"] == pytest.approx(0.04722, abs=1e-4)
    assert (st["min"], st["max"]) == (0.765, 0.803)
    # the learned row each run's meta-val chose: all+logreg, r2d2+logreg, all+logreg -> 0.782, 0.765, 0.770
    chosen = res["chosen_accuracy"]["5-way 5-shot"]["best_learned"]
    assert chosen["accuracy"] == [0.782, 0.765, 0.770]
    assert res["chosen"][runs[1]]["best_learned"] == "r2d2+logreg"
    # a chosen row a setting lacks is not averaged there: 1-shot has only the protonet row
    assert "best_learned" not in res["chosen_accuracy"]["5-way 1-shot"]
    assert res["chosen_accuracy"]["5-way 1-shot"]["scorer"]["mean"] == pytest.approx(0.7)
    assert res["paired_vs_protonet"]["5-way 5-shot"]["relation"]["mean"] == [-0.036, -0.020, -0.035]
    text = seed_spread.markdown(res)
    assert "| r2d2+logreg | 0.803 | 0.765 | 0.783 | 0.784 +- 0.047 | 0.038 |" in text


def test_runs_evaluated_on_other_episodes_are_refused_naming_the_field(tmp_path):
    a = _run(tmp_path, "a", {"protonet": 0.77}, "x", "y", 0.0)
    b = _run(tmp_path, "b", {"protonet": 0.76}, "x", "y", 0.0, seed=1)
    with pytest.raises(MetamusicError, match="'seed' \\(0 against 1\\)"):
        seed_spread.spread({r: seed_spread.load(r) for r in (a, b)})
    # an evaluation that did not record its seed is compared on the fields both hold; dropped counts may differ
    old = _run(tmp_path, "old", {"protonet": 0.75}, "x", "y", 0.0, dropped={"exact": 3})
    cfg = json.loads((tmp_path / "old" / "eval.json").read_text())
    del cfg["config"]["seed"]
    (tmp_path / "old" / "eval.json").write_text(json.dumps(cfg))
    assert seed_spread.spread({r: seed_spread.load(r) for r in (a, old)})["settings"]["5-way 5-shot"]["protonet"][
        "accuracy"] == [0.77, 0.75]


def test_cli_prints_the_table_writes_json_and_names_a_run_without_evaluation(tmp_path, capsys):
    runs = _three(tmp_path)
    out = tmp_path / "spread.json"
    assert seed_spread.main(runs + [f"--out={out}"]) == 0
    assert "meta-val's `best_learned` (all+logreg, r2d2+logreg, all+logreg)" in capsys.readouterr().out
    assert json.loads(out.read_text())["runs"] == runs
    (tmp_path / "empty").mkdir()
    assert seed_spread.main([runs[0], str(tmp_path / "empty")]) == 2
    assert "no eval.json in" in capsys.readouterr().err
