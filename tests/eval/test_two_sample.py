"""The classifier two-sample test: chance on two samples of one distribution, near 1 on a distribution
that differs in order only; Wilson intervals; real openings as the generators' comparison."""

import numpy as np
import pytest

from metamusic.eval import two_sample

C, T = 12, 32


def _markov(rng, n: int, stay: float = 0.0):
    """Melodies from a chain that steps up by one class mod C with probability 0.8 (else a random class)."""
    x = np.zeros((n, T), np.int32)
    x[:, 0] = rng.integers(0, C, n)
    for t in range(1, T):
        step = rng.random(n) < 0.8
        x[:, t] = np.where(step, (x[:, t - 1] + 1) % C, rng.integers(0, C, n))
    return x


def test_two_samples_of_one_distribution_are_at_chance_and_a_shuffled_one_is_not():
    rng = np.random.default_rng(0)
    a, b = _markov(rng, 160), _markov(rng, 160)
    valid = np.ones((160, T), np.float32)
    same = two_sample.test(a, valid, b, C, steps=80)
    assert same["n"] == 320 and same["ci95"][0] < 0.5, same  # no evidence of a difference
    shuffled = np.array([rng.permutation(row) for row in b])  # the same notes, in random order
    diff = two_sample.test(a, valid, shuffled, C, steps=80)
    assert diff["ci95"][0] > 0.8, diff


def test_length_is_no_cue_fakes_take_their_real_rows_padding():
    """Real rows with padding against fakes of full length but the same music: at chance."""
    rng = np.random.default_rng(1)
    a, b = _markov(rng, 160), _markov(rng, 160)
    valid = (np.arange(T) < rng.integers(8, T + 1, 160)[:, None]).astype(np.float32)
    a = np.where(valid > 0, a, C + 1)  # padding tokens past each real tune's end
    r = two_sample.test(a, valid, b, C, steps=80)
    assert r["ci95"][0] < 0.5, r  # no evidence of a difference (below chance is overfitting noise)


def test_wilson_interval():
    lo, hi = two_sample.wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = two_sample.wilson(100, 100)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.9630, abs=1e-3)


def test_openings_are_the_first_steps_of_query_pool_tunes(style_corpus):
    st = style_corpus.styles[0]
    tok, valid = two_sample.openings(style_corpus, st, 16, 100, np.random.default_rng(0))
    k = style_corpus.style_index(st)
    pool = np.flatnonzero((style_corpus.style_of == k) & (style_corpus.pool == 1))
    assert len(tok) == len(pool)
    firsts = {tuple(style_corpus.tokens[style_corpus.offsets[j] + 1: style_corpus.offsets[j] + 17]) for j in pool}
    for row, v in zip(tok, valid):
        assert tuple(row[v > 0]) in {f[: int(v.sum())] for f in firsts}
    assert not (tok == style_corpus.enc.bos).any()
