"""Pairing one generator across two GAN evaluations (eval.compare_runs)."""

import json

import numpy as np
import pytest

from metamusic.errors import MetamusicError
from metamusic.eval import compare_runs

M = "meta-GAN, x"


def _run(tmp_path, name, overlap, distinct_by_t):
    res = {"config": {"test_styles": ["a", "b", "c", "d"], "temperature": 1.0},
           "per_style": {"K=5": {compare_runs.HELD_OUT: {"distinct_4grams": [0.8] * 4},
                                 M: {str(t): {"overlap_mean": list(np.add(overlap, 0.01 * i)),
                                              "distinct_4grams": [d] * 4}
                                     for i, (t, d) in enumerate(distinct_by_t.items())}}},
           "two_sample": {"K=5": {M: {"accuracy": 0.7, "ci95": [0.6, 0.8], "n": 100}}}}
    d = tmp_path / name
    d.mkdir()
    (d / "eval.json").write_text(json.dumps(res))
    return str(d)


def test_paired_differences_at_the_table_and_at_matched_diversity(tmp_path):
    a = _run(tmp_path, "a", [0.90, 0.85, 0.88, 0.86], {0.8: 0.70, 1.0: 0.90})
    b = _run(tmp_path, "b", [0.80, 0.76, 0.79, 0.75], {0.8: 0.79, 1.0: 0.95})
    row = compare_runs.compare(a, b, M)["K=5"]
    d = row["overlap_mean_table"]  # at T=1: a's values +0.01 (index 1), b's +0.01
    assert d["mean"] == pytest.approx(np.mean([0.10, 0.09, 0.09, 0.11])) and d["excludes_zero"]
    assert row["matched_temperatures"] == ("1.0", "0.8")  # nearest pooled distinct 4-grams to 0.8
    assert row["overlap_mean_matched"]["mean"] == pytest.approx(np.mean([0.11, 0.10, 0.10, 0.12]))
    assert row["two_sample_a"]["accuracy"] == 0.7


def test_a_run_without_per_style_figures_is_one_clear_error(tmp_path):
    d = tmp_path / "old"
    d.mkdir()
    (d / "eval.json").write_text(json.dumps({"config": {}}))
    with pytest.raises(MetamusicError, match="no per-style figures.*--mode=eval"):
        compare_runs.compare(str(d), str(d), M)
