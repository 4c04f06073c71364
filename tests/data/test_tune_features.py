"""Hand-made tune features (the non-learned classifiers' input) on melodies with known values."""

import numpy as np

from metamusic.data import EncodingConfig, features
from metamusic.data.melody import meter_positions

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
    assert x.shape == (12 + 25 + features.IOI_BINS + 2 * features.POS_BINS + 24,)
    np.testing.assert_allclose(x[-24:], features.tonal_features(t, ENC.num_classes, ENC.min_note))
    bars = x[12 + 25 + features.IOI_BINS + features.POS_BINS: -24]
    assert bars[11] == 1.0  # every complete bar is 12 steps long
