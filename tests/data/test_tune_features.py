"""Hand-made tune features (the non-learned classifiers' input) on melodies with known values."""

import numpy as np

from metamusic.data import EncodingConfig, features
from metamusic.data.melody import meter_positions
from metamusic.eval import classify

ENC = EncodingConfig()


def _tokens(pitches, step=2):
    """Each pitch held for `step` steps (onset then holds)."""
    t = []
    for p in pitches:
        t += [p - ENC.min_note + 2] + [0] * (step - 1)
    return np.array(t)


def test_tonal_features_read_a_pentatonic_tune_in_its_own_key():
    pent = [60, 62, 64, 67, 69, 72]  # C D E G A C, ending on C
    f = features.tonal_features(_tokens(pent), ENC.num_classes, ENC.min_note)
    degrees, contour, register = f[:12], f[12:21], f[21:]
    np.testing.assert_allclose(degrees[[0, 2, 4, 7, 9]], [2 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 6])
    assert abs(degrees.sum() - 1.0) < 1e-12 and degrees[[1, 3, 5, 6, 8, 10, 11]].sum() == 0
    np.testing.assert_allclose(contour, np.eye(9)[8])  # every consecutive pair is (up, up)
    np.testing.assert_allclose(register, [(sum(pent) / 6 - 66) / 12, np.std(pent) / 12, 12 / 24])
    # the same tune a fourth higher: the same degrees and contour, the register moves by 5/12 of an octave
    g = features.tonal_features(_tokens([p + 5 for p in pent]), ENC.num_classes, ENC.min_note)
    np.testing.assert_allclose(g[:21], f[:21])
    np.testing.assert_allclose(g[21] - f[21], 5 / 12)


def test_contour_counts_down_same_up_pairs():
    f = features.tonal_features(_tokens([64, 62, 62, 65]), ENC.num_classes, ENC.min_note)
    # intervals: down, same, up -> pairs (down, same) = index 0*3+1, (same, up) = 1*3+2, half each
    np.testing.assert_allclose(f[12:21], np.eye(9)[1] / 2 + np.eye(9)[5] / 2)
    assert not features.tonal_features(np.array([0, 1, 1]), ENC.num_classes, ENC.min_note).any()  # no notes


def test_tune_features_layout():
    t = _tokens([60, 62, 64, 65, 67, 65, 64, 62])
    x = features.tune_features(t, meter_positions(len(t), 12), ENC.num_classes, ENC.min_note)
    assert x.shape == (12 + 25 + features.IOI_BINS + 2 * features.POS_BINS + 24 + features.RHYTHM_DIM,)
    assert x.shape == (sum(w for _, w in features.BLOCKS),)
    np.testing.assert_allclose(x[features.block_columns("rhythm")],
                               features.rhythm_features(t, meter_positions(len(t), 12), ENC.num_classes))
    tonal = x[-24 - features.RHYTHM_DIM: -features.RHYTHM_DIM]
    np.testing.assert_allclose(tonal, features.tonal_features(t, ENC.num_classes, ENC.min_note))
    bars = x[12 + 25 + features.IOI_BINS + features.POS_BINS: -24 - features.RHYTHM_DIM]
    assert bars[11] == 1.0  # every complete bar is 12 steps long


def _rhythm(durations, steps_per_bar=16):
    t = []
    for i, d in enumerate(durations):
        t += [60 + i % 5 - ENC.min_note + 2] + [0] * (d - 1)
    t = np.array(t)
    pos = meter_positions(len(t) + 1, steps_per_bar)[1:]  # no BOS here: the channel without its first entry
    return features.rhythm_features(t, pos, ENC.num_classes)


def test_rhythm_features_tell_dotted_pairs_from_even_quavers_and_triplets():
    """Two bars of 4/4 (16 steps) in even quavers, dotted pairs (3 + 1 steps) and quantized triplets
    (1 + 2 + 1 steps): each beat's onset pattern and the inter-onset ratios are known exactly."""
    beats = lambda f: f[:16]
    ratios = lambda f: dict(zip(np.round(2 ** features.IOI_RATIOS, 2), f[16:]))
    even, dotted, triplets = _rhythm([2] * 16), _rhythm([3, 1] * 8), _rhythm([1, 2, 1] * 8)
    np.testing.assert_allclose(beats(even), np.eye(16)[0b1010])
    np.testing.assert_allclose(beats(dotted), np.eye(16)[0b1001])
    np.testing.assert_allclose(beats(triplets), np.eye(16)[0b1101])
    assert ratios(even)[1.0] == 1.0
    # 16 notes, 15 inter-onset intervals 3, 1, 3, ..., 3: 14 ratios alternating 1/3 and 3
    assert ratios(dotted)[0.33] == 0.5 and ratios(dotted)[3.0] == 0.5
    # 24 notes, intervals 1, 2, 1, 1, 2, 1, ..., 1, 2: 22 ratios, 2 (8 of them), 1/2 (7) and 1 (7)
    assert (ratios(triplets)[2.0], ratios(triplets)[0.5], ratios(triplets)[1.0]) == (8 / 22, 7 / 22, 7 / 22)
    # the same dotted tune written in semiquavers and demisemiquavers (half the steps) keeps its ratios
    np.testing.assert_allclose(_rhythm([6, 2] * 8, 32)[16:], dotted[16:])


def test_beat_patterns_skip_beats_cut_by_a_bar_line_and_need_positions():
    """In 3/8 (6 steps a bar) the beat from position 4 would cross the bar line: only the beat at 0 counts.
    Without the bar-position channel (every position NO_POS) the patterns are zero; the ratios remain."""
    t = np.array([2 + 10, 0, 2 + 11, 0, 2 + 12, 0] * 4)
    pos = meter_positions(len(t) + 1, 6)[1:]
    f = features.rhythm_features(t, pos, ENC.num_classes)
    np.testing.assert_allclose(f[:16], np.eye(16)[0b1010])  # 4 bars, one whole beat each
    g = features.rhythm_features(t, np.full(len(t), features.POS_BINS), ENC.num_classes)
    assert not g[:16].any() and g[16:].sum() == 1.0



def _optimum_logits(xs, ys, xq, n_way, l2):
    """The regression's minimum found another way: L-BFGS on the weights [D, N] and bias themselves."""
    from scipy.optimize import minimize

    out = []
    for b in range(len(xs)):
        mu, sd = xs[b].mean(0), xs[b].std(0) + 1e-3
        x, q = (xs[b] - mu) / sd, (xq[b] - mu) / sd
        y, d = np.eye(n_way)[ys[b]], x.shape[1]

        def f(theta):
            w, c = theta[: d * n_way].reshape(d, n_way), theta[d * n_way:]
            z = x @ w + c
            z = z - z.max(-1, keepdims=True)
            lp = z - np.log(np.exp(z).sum(-1, keepdims=True))
            g = np.exp(lp) - y
            return -(y * lp).sum() + 0.5 * l2 * (w ** 2).sum(), np.concatenate([(x.T @ g + l2 * w).ravel(), g.sum(0)])

        theta = minimize(f, np.zeros(d * n_way + n_way), jac=True, method="L-BFGS-B",
                         options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-12}).x
        out.append(q @ theta[: d * n_way].reshape(d, n_way) + theta[d * n_way:])
    return np.stack(out)


def test_logistic_regression_reaches_its_minimum_on_wide_correlated_features():
    """`logreg_logits` must give the penalised regression's minimum (checked against L-BFGS on the weights),
    with features wider and narrower than the support set, at every L2 meta-val tries; the first case repeats
    each column 20 times, where fixed-step gradient descent diverged at the larger L2s."""
    rng = np.random.default_rng(0)
    for n_way, shots, d, repeat in ((3, 2, 8, 20), (4, 5, 6, 1)):
        centres = rng.normal(size=(n_way, d))
        ys = np.tile(np.repeat(np.arange(n_way), shots), (3, 1))
        yq = np.tile(np.arange(n_way), (3, 1))
        xs = np.repeat(centres[ys] + rng.normal(size=ys.shape + (d,)), repeat, -1)
        xq = np.repeat(centres[yq] + rng.normal(size=yq.shape + (d,)), repeat, -1)
        for l2 in classify.FEATURE_L2:
            z = features.logreg_logits(xs, ys, xq, n_way, l2=l2)
            ref = _optimum_logits(xs, ys, xq, n_way, l2)
            centre = lambda v: v - v.mean(-1, keepdims=True)  # the class-sum direction leaves the softmax unchanged
            np.testing.assert_allclose(centre(z), centre(ref), rtol=1e-5, atol=1e-5)
            assert (z.argmax(-1) == yq).mean() > 0.6, (n_way, d, l2)  # the fit separates the classes
