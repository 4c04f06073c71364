"""Style fidelity's statistics on known answers: draws as the unit, paired with the real tunes, share of real."""

import numpy as np
import pytest

from metamusic.eval.draws import openings
from metamusic.eval.sample_fidelity import REAL, summarize


def test_summary_pairs_every_row_with_the_real_tunes_on_the_same_draws():
    real = np.array([[1.0, 0.75], [0.75, 1.0], [0.5, 0.75]])  # 3 styles x 2 draws
    gen = real - 0.25  # a quarter below the real tunes on every draw
    noisy = np.array([[0.25, 1.0], [0.0, 0.5], [0.75, 0.0]])
    out = summarize({REAL: real, "gen": gen, "noisy": noisy}, ["a", "b", "c"], samples=4, chance=0.2)
    g = out["gen"]
    assert g["fidelity"] == pytest.approx(real.mean() - 0.25) and g["samples"] == 24 and g["draws"] == 6
    assert g["per_style"] == pytest.approx({"a": 0.625, "b": 0.625, "c": 0.375})
    # a constant per-draw difference: the paired CI has zero width, however wide each row's own CI
    assert g["paired_vs_real"]["mean"] == pytest.approx(-0.25) and g["paired_vs_real"]["ci95"] == pytest.approx(0)
    assert g["paired_vs_real"]["excludes_zero"] and g["ci95"] > 0.1
    assert g["share_of_real"]["share"] == pytest.approx(g["fidelity"] / real.mean())
    lo, hi = g["share_of_real"]["ci95"]
    assert lo <= g["share_of_real"]["share"] <= hi < 1
    assert out["noisy"]["paired_vs_real"]["mean"] == pytest.approx(noisy.mean() - real.mean())
    assert out["noisy"]["paired_vs_real"]["ci95"] > 0.2  # differences that vary from draw to draw
    assert "paired_vs_real" not in out[REAL]


def test_openings_take_the_first_window_of_each_whole_tune():
    tok = np.arange(12 * 3).reshape(12, 3)  # 3 tunes x 4 windows
    first = openings((tok, tok * 0 + 1), 4)
    assert first[0].tolist() == [tok[0].tolist(), tok[4].tolist(), tok[8].tolist()] and first[1].shape == (3, 3)


def test_styles_too_small_for_the_draws_are_left_out_and_named():
    """A user collection whose styles hold fewer query-pool tunes than eval.samples: named, nothing drawn,
    no error after the evaluation's work (the scorer is not even loaded)."""
    from types import SimpleNamespace

    import ml_collections

    import synth
    from metamusic.eval import sample_fidelity

    corpus = synth.token_corpus(n_styles=6, n_tunes=20, length=40)
    cfg = ml_collections.ConfigDict({"seed": 0, "data": {"length": 16}, "eval": {
        "fidelity_shots": 2, "samples": 1000, "tune_windows": 1, "fidelity_draws": 1, "distractors": 2,
        "temperature": 1.0}})
    left = {}
    out = sample_fidelity.evaluate(SimpleNamespace(cfg=cfg, corpus=corpus), {}, "/no/such/scorer", left_out=left)
    assert out == {} and set(left) == set(corpus.styles_in("test"))
    assert all("query-pool tunes" in why for why in left.values())
