"""Music metrics on hand-made melodies whose values are known."""

import numpy as np
import pytest

from metamusic.eval import music_metrics as mm

MIN = 48  # token 2 = MIDI 48 (C3)


def tok(pitches, dur=2):
    """Tokens of notes of `dur` steps each: pitch token then holds."""
    out = []
    for p in pitches:
        out += [p - MIN + 2] + [0] * (dur - 1)
    return np.array(out)


C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


def test_c_major_scale():
    ns = mm.notes(tok(C_MAJOR, dur=2))
    assert [n.pitch for n in ns] == C_MAJOR
    assert [(n.start, n.end) for n in ns][:2] == [(0, 2), (2, 4)]
    f = mm.features(ns)
    assert f["pitch_range"][0] == 12
    assert f["average_interval"][0] == pytest.approx(12 / 7)
    assert f["inter_onset_interval"][0] == 2.0
    assert f["pitch_class_histogram"][0] == pytest.approx(2 / 8)  # C twice
    assert f["note_length_histogram"][1] == 1.0  # all eighth notes (2 steps)
    tm = f["pitch_class_transition_matrix"].reshape(12, 12)
    assert tm[0, 2] == pytest.approx(1 / 7) and tm[11, 0] == pytest.approx(1 / 7)
    v = mm.validity([ns], [16])
    # one 16-step bar: groove consistency (bar-to-bar onset agreement) is undefined, so NaN, not 1 or 0
    assert np.isnan(v.pop("groove_consistency"))
    # entropy in bits: C twice, six other pitch classes once: -(1/4 log2 1/4 + 6/8 log2 1/8) = 0.5 + 2.25
    assert v == {"empty_bar_rate": 0.0, "notes_2_steps_or_longer": 1.0, "pitch_classes_used": 7.0,
                 "pitch_class_entropy": pytest.approx(2.75), "scale_consistency": 1.0, "empty_beat_rate": 0.0}


def test_chromatic_notes_lower_scale_consistency():
    ns = mm.notes(tok([60, 61, 62, 63]))  # C C# D D#: a major or minor scale holds at most 3 of them
    m = mm.muspy_metrics(ns)
    assert m["scale_consistency"] == 0.75
    assert m["pitch_class_entropy"] == pytest.approx(2.0)  # four classes, equally often: log2 4


def test_groove_consistency_compares_bars_onsets_without_a_phantom_bar():
    # two bars with the same onsets (every 4th step): consistent; the last note ends on the barline, which
    # muspy alone would count as a third, empty bar (1 - 4/32 = 0.875)
    same = mm.notes(tok([60, 62, 64, 65, 60, 62, 64, 65], dur=4))
    assert mm.muspy_metrics(same)["groove_consistency"] == 1.0
    # bar 2 moves every onset by one step: 8 of 16 positions disagree
    t = np.concatenate([tok([60, 62, 64, 65], dur=4), [0], tok([60, 62, 64], dur=4), tok([65], dur=3)])
    moved = mm.notes(t)
    assert [n.start for n in moved] == [0, 4, 8, 12, 17, 21, 25, 29]
    assert mm.muspy_metrics(moved)["groove_consistency"] == pytest.approx(1 - 8 / 16)


def test_empty_beats_and_an_empty_melody():
    t = np.concatenate([tok([60], dur=4), np.ones(12, int), tok([67], dur=4)])  # C, 12 steps of note-off, G
    # C sounds in beat 0 and touches beat 1 at its end (MusPy counts the end step's beat), G in beats 4-5
    # (its end, step 20, is beat 5): beats 2 and 3 of 6 are empty
    m = mm.muspy_metrics(mm.notes(t))
    assert m["empty_beat_rate"] == pytest.approx(1 - 4 / 6)
    assert all(np.isnan(v) for v in mm.muspy_metrics([]).values())


def test_diversity_of_a_set_against_the_reference():
    rng = np.random.default_rng(3)
    varied = [mm.notes(tok([60 + int(x) for x in rng.integers(0, 12, 12)], dur=int(rng.integers(1, 4))))
              for _ in range(20)]
    ref = mm.set_features(varied)
    assert mm.relative_diversity(ref, ref) == pytest.approx(1.0)
    clones = mm.set_features([varied[0]] * 20)
    assert mm.relative_diversity(clones, ref) == 0.0  # every melody alike


def test_distinct_ngrams():
    assert mm.distinct_ngrams([mm.notes(tok([60, 62, 64, 65, 67]))]) == 1.0  # CDEF, DEFG
    assert mm.distinct_ngrams([mm.notes(tok([60, 62] * 3))]) == pytest.approx(2 / 3)  # CDCD, DCDC, CDCD
    assert mm.distinct_ngrams([mm.notes(tok([60, 62, 64]))], n=4) != mm.distinct_ngrams([mm.notes(tok([60] * 5))])
    assert np.isnan(mm.distinct_ngrams([mm.notes(tok([60, 62, 64]))]))  # no 4-gram at all


def test_rests_note_offs_and_empty_bars():
    t = np.concatenate([tok([60], dur=1), [1], np.zeros(14, int), np.zeros(16, int), tok([67], dur=4)])
    ns = mm.notes(t)
    assert [(n.pitch, n.start, n.end) for n in ns] == [(60, 0, 1), (67, 32, 36)]
    v = mm.validity([ns], [len(t)], steps_per_bar=16)
    assert v["empty_bar_rate"] == pytest.approx(1 / 3)  # bar 2 (steps 16-31) is silent
    assert v["notes_2_steps_or_longer"] == 0.5
    assert v["pitch_classes_used"] == 2


def test_pad_and_bos_are_silence_and_a_final_note_runs_to_the_end():
    ns = mm.notes(np.array([39, 14, 0, 0, 38, 38]))  # BOS, G3 held, PAD
    assert ns == [mm.Note(60, 1, 4)]


def test_mgeval_same_distribution_overlaps_more_than_a_different_one():
    rng = np.random.default_rng(0)

    def melody(scale_pcs):
        return mm.notes(tok([60 + int(rng.choice(scale_pcs)) for _ in range(12)], dur=int(rng.integers(1, 4))))

    major = [0, 2, 4, 5, 7, 9, 11]
    ref = mm.set_features([melody(major) for _ in range(30)])
    same = mm.set_features([melody(major) for _ in range(30)])
    other = mm.set_features([mm.notes(tok([40 + 2 * i for i in range(12)], dur=8)) for _ in range(30)])
    r_same, r_other = mm.mgeval(same, ref), mm.mgeval(other, ref)
    oa_same = np.mean([r_same[f]["overlap"] for f in mm.FEATURES])
    oa_other = np.mean([r_other[f]["overlap"] for f in mm.FEATURES])
    kl_same = np.mean([r_same[f]["kl"] for f in mm.FEATURES])
    kl_other = np.mean([r_other[f]["kl"] for f in mm.FEATURES])
    assert oa_same > 0.7 and oa_other < 0.4, (oa_same, oa_other)
    assert kl_same < kl_other


def test_overlap_of_identical_samples_is_one_and_kl_zero():
    x = np.random.default_rng(1).normal(size=200)
    oa, kl = mm.overlap_and_kl(x, x)
    assert oa == pytest.approx(1.0, abs=1e-6) and kl == pytest.approx(0.0, abs=1e-6)
    oa2, kl2 = mm.overlap_and_kl(x, x + 10)
    assert oa2 < 0.01 and kl2 > 5
