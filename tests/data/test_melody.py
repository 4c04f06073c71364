"""Melody extraction, token encoding, the round trip back to MIDI, and the content hash."""

import numpy as np
import pytest

from metamusic.data import melody
from metamusic.errors import MetamusicError

CFG = melody.EncodingConfig()


def _seq(notes, qpm=120.0, ts=(4, 4)):
    """notes: (pitch, start_quarter, end_quarter[, instrument[, is_drum]])."""
    from note_seq.protobuf import music_pb2

    ns = music_pb2.NoteSequence()
    ns.tempos.add(qpm=qpm)
    ns.time_signatures.add(numerator=ts[0], denominator=ts[1])
    spq = 60.0 / qpm
    for n in notes:
        p, a, b = n[:3]
        ns.notes.add(pitch=p, start_time=a * spq, end_time=b * spq, velocity=80,
                     instrument=n[3] if len(n) > 3 else 0, is_drum=n[4] if len(n) > 4 else False)
    ns.total_time = max(n[2] for n in notes) * spq
    return ns


def test_tokens_match_note_seq_one_hot_encoding():
    from note_seq import MelodyOneHotEncoding

    enc = MelodyOneHotEncoding(CFG.min_note, CFG.max_note)
    assert enc.num_classes == CFG.num_classes == 38 and CFG.vocab_size == 40
    ev = np.array([60, -2, -1, -2, 48, 83, -2, -1])
    tok = melody.events_to_tokens(ev, CFG, bos=False)
    assert list(tok) == [enc.encode_event(int(e)) for e in ev]
    assert melody.events_to_tokens(ev, CFG)[0] == CFG.bos


def test_round_trip_tokens_sequence_midi(tmp_path):
    from note_seq import midi_io

    rng = np.random.default_rng(0)
    notes, t = [], 0.0
    for _ in range(24):
        d = float(rng.choice([0.25, 0.5, 1.0]))
        notes.append((int(rng.integers(50, 80)), t, t + d))
        t += d + float(rng.choice([0.0, 0.0, 0.5]))  # some rests
    ev = melody.extract_events(_seq(notes), CFG)
    tok = melody.events_to_tokens(ev, CFG)
    path = str(tmp_path / "out.mid")
    melody.tokens_to_midi(tok, CFG, path)
    back = midi_io.midi_file_to_note_sequence(path)
    assert [n.pitch for n in back.notes] == [p for p, _, _ in notes]
    ev2 = melody.extract_events(back, CFG)
    assert np.array_equal(ev2[: len(ev)], ev)  # the re-read melody may gain bar padding at the end only
    assert (ev2[len(ev):] == -2).all()
    # PAD ends a tune, BOS is dropped
    padded = np.concatenate([tok, [CFG.pad] * 5])
    assert np.array_equal(melody.tokens_to_events(padded, CFG), ev)


def test_invalid_tokens_raise():
    with pytest.raises(MetamusicError):
        melody.tokens_to_events(np.array([0, 1, 77]), CFG)


def test_out_of_range_melody_is_transposed_by_octaves_not_dropped():
    notes = [(p + 24, i, i + 1) for i, p in enumerate([72, 74, 76, 77, 79, 81, 83, 84])]  # 96..108
    ev = melody.extract_events(_seq(notes), CFG)
    mel = ev[ev >= 0]
    assert mel.min() >= CFG.min_note and mel.max() < CFG.max_note
    assert set(np.diff(mel)) == set(np.diff([72, 74, 76, 77, 79, 81, 83, 84]))  # intervals kept
    assert ((mel - np.array([96, 98, 100, 101, 103, 105, 107, 108])) % 12 == 0).all()


def test_in_range_melody_keeps_its_register():
    notes = [(p, i, i + 1) for i, p in enumerate([50, 52, 53, 55, 57, 58, 60, 62])]
    ev = melody.extract_events(_seq(notes), CFG)
    assert list(ev[ev >= 0]) == [50, 52, 53, 55, 57, 58, 60, 62]


def test_key_normalization_moves_to_c():
    d_major = [62, 64, 66, 67, 69, 71, 73, 74, 73, 71, 69, 67, 66, 64, 62]
    cfg = melody.EncodingConfig(key_normalize=True)
    ev = melody.extract_events(_seq([(p, i, i + 1) for i, p in enumerate(d_major)]), cfg)
    pcs = set(int(p) % 12 for p in ev[ev >= 0])
    assert pcs <= {0, 2, 4, 5, 7, 9, 11}


def test_skyline_drops_drums_and_notes_under_a_held_top_note():
    notes = [(72, 0, 2), (60, 0, 1), (64, 1, 2),  # alto moves under a held soprano
             (74, 2, 3), (36, 2, 3, 9, True), (76, 3, 4), (77, 4, 5), (79, 5, 6), (81, 6, 7), (83, 7, 8), (81, 8, 9)]
    ev = melody.extract_events(_seq(notes), CFG)
    assert list(ev[ev >= 0]) == [72, 74, 76, 77, 79, 81, 83, 81]


def test_too_short_and_empty_are_melody_errors():
    with pytest.raises(melody.MelodyError, match="too short"):
        melody.extract_events(_seq([(60, 0, 1), (62, 1, 2)]), CFG)
    with pytest.raises(melody.MelodyError, match="no pitched notes"):
        melody.extract_events(_seq([(36, 0, 1, 9, True)]), CFG)


def test_content_hash_is_transposition_and_tempo_invariant():
    mel = [60, 62, 64, 65, 67, 65, 64, 62, 60]
    base = melody.extract_events(_seq([(p, i, i + 1) for i, p in enumerate(mel)]), CFG)
    up = melody.extract_events(_seq([(p + 5, i, i + 1) for i, p in enumerate(mel)]), CFG)
    slow = melody.extract_events(_seq([(p, 2 * i, 2 * i + 2) for i, p in enumerate(mel)]), CFG)
    other = melody.extract_events(_seq([(p, i, i + 1) for i, p in enumerate(mel[1:] + [59])]), CFG)
    h = melody.content_hash
    assert h(base) == h(up) == h(slow)
    assert h(base) != h(other)


def test_bad_encoding_config_names_the_field():
    with pytest.raises(MetamusicError, match="min_note"):
        melody.EncodingConfig(min_note=80, max_note=84)
    with pytest.raises(MetamusicError, match="steps_per_quarter"):
        melody.EncodingConfig(steps_per_quarter=0)
    with pytest.raises(MetamusicError, match="data.melody.*skyline"):
        melody.EncodingConfig(melody="top")


def test_marked_melody_track_is_taken_over_a_higher_accompaniment():
    """A chord track above a track named "Melody": the skyline follows the chords' top notes; with
    melody="marked" the tune is the named track's notes. A file with no named track keeps the skyline."""
    tune = [60, 62, 64, 65, 67, 65, 64, 62, 60]
    notes = [(p, i, i + 1, 1) for i, p in enumerate(tune)]
    notes += [(p, i, i + 1, 0) for i in range(9) for p in (72, 76, 79)]  # chords above it
    ns = _seq(notes)
    for name, inst in (("Piano", 0), ("Melody", 1)):
        ns.instrument_infos.add(instrument=inst, name=name)
    marked = melody.EncodingConfig(melody="marked")
    sky = melody.extract_events(ns, CFG)
    assert set(sky[sky >= 0]) <= {72, 76, 79}
    mel = melody.extract_events(ns, marked)
    assert list(mel[mel >= 0]) == tune
    del ns.instrument_infos[:]
    ns.instrument_infos.add(instrument=0, name="Piano")
    assert melody.marked_melody(ns) is None
    np.testing.assert_array_equal(melody.extract_events(ns, marked), sky)


def test_the_default_melody_source_keeps_existing_cache_keys():
    assert "melody" not in melody.settings(CFG)  # so caches and the shipped parse store keep their keys
    assert melody.settings(melody.EncodingConfig(melody="marked"))["melody"] == "marked"
