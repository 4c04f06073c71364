"""Melody extraction splits and quantizes notes on arrays: the same events as note_seq's protos give."""

import numpy as np
import pytest

import synth
from metamusic.data import formats, melody

ENC = melody.EncodingConfig()


def _reference(sequence, cfg, pickup_quarters=0.0):
    """extract_melody as note_seq's split and quantize of whole NoteSequences give it (no arrays)."""
    from note_seq import melodies_lib, sequences_lib
    from note_seq.protobuf import music_pb2

    pieces = sequences_lib.split_note_sequence_on_time_changes(sequence, skip_splits_inside_notes=False)
    events, positions = [], []
    for i, piece in enumerate(pieces):
        if not any(not n.is_drum for n in piece.notes):
            continue
        q = sequences_lib.quantize_note_sequence(piece, cfg.steps_per_quarter)
        spb = sequences_lib.steps_per_bar_in_quantized_sequence(q)
        if spb % 1 or spb < 1:
            del q.time_signatures[:]
            q.time_signatures.add(numerator=4, denominator=4)
            spb = sequences_lib.steps_per_bar_in_quantized_sequence(q)
        mono = music_pb2.NoteSequence()
        mono.CopyFrom(q)
        del mono.notes[:]
        for n in _skyline([n for n in q.notes if not n.is_drum and n.velocity > 0]):
            m = mono.notes.add()
            m.CopyFrom(n)
            m.instrument, m.program = 0, 0
        ev = []
        if mono.notes:
            mel = melodies_lib.Melody()
            mel.from_quantized_sequence(mono, instrument=0, gap_bars=10**9, ignore_polyphonic_notes=True, pad_end=True)
            ev = list(mel)
        pickup = int(round(pickup_quarters * cfg.steps_per_quarter)) if i == 0 else 0
        phase = (int(spb) - pickup) % int(spb) if 0 < pickup < spb else 0
        events.extend(ev)
        positions.append((np.arange(len(ev)) + phase) % int(spb))
    ev = np.asarray(events, np.int16)
    pos = np.minimum(np.concatenate(positions), melody.MAX_POS - 1).astype(np.int8)
    return melody._fit_range(ev, cfg), pos


def _skyline(notes):
    """Top voice of quantized note protos: at each onset the highest note, unless a higher note is still held."""
    notes = sorted(notes, key=lambda n: (n.quantized_start_step, -n.pitch))
    kept, held_end, held_pitch, last_start = [], -1, -1, None
    for n in notes:
        s = n.quantized_start_step
        if s == last_start:
            continue
        last_start = s
        if s < held_end and n.pitch < held_pitch:
            continue
        kept.append(n)
        held_end, held_pitch = n.quantized_end_step, n.pitch
    return kept


def _sequences(tmp_path):
    from note_seq.protobuf import music_pb2

    out = [formats.read_file(synth.write_midi(str(tmp_path / f"m{s}.mid"), seed=s, n_bars=8 + 8 * s))[0].sequence
           for s in range(3)]
    rng = np.random.default_rng(1)
    book = synth.write_abc_book(str(tmp_path / "b.abc"), [synth.abc_tune(1, rng, "6/8"), synth.abc_tune(2, rng, "7/8")])
    out += [r.sequence for r in formats.read_file(book)]
    # Hand-made: a note across a meter change, a zero-length note, a chord note under a held top note, a 3/32 bar,
    # a note starting exactly at a change and one at the very end.
    ns = music_pb2.NoteSequence()
    ns.tempos.add(time=0.0, qpm=100.0)
    ns.time_signatures.add(time=0.0, numerator=3, denominator=4)
    ns.time_signatures.add(time=3.6, numerator=3, denominator=32)
    ns.tempos.add(time=5.0, qpm=133.0)
    t = 0.0
    for i, p in enumerate([60, 64, 67, 72, 71, 69, 67, 65, 64, 62, 60, 62, 64, 65, 67]):
        ns.notes.add(pitch=p, velocity=70, start_time=t, end_time=t + (0.9 if i != 5 else 0.0), instrument=0)
        ns.notes.add(pitch=p - 12, velocity=60, start_time=t + 0.1, end_time=t + 0.5, instrument=1)
        t += 0.6 if i != 6 else 0.8
    ns.notes.add(pitch=84, velocity=90, start_time=3.0, end_time=6.5, instrument=2)  # across two changes
    ns.notes.add(pitch=50, velocity=0, start_time=1.0, end_time=2.0, instrument=1)  # silent
    ns.total_time = max(n.end_time for n in ns.notes)
    out.append(ns)
    # A long low note with short higher notes inside it (each cuts the events written for the longer one), a
    # note that ends where the next starts, and a held last note.
    ns = music_pb2.NoteSequence()
    for p, a, b in [(60, 0.0, 4.0), (64, 1.0, 1.5), (62, 2.0, 2.25), (67, 4.0, 4.5), (65, 4.5, 5.0), (64, 5.0, 7.0),
                    (62, 5.5, 6.0), (60, 7.25, 7.5), (72, 8.0, 11.0), (71, 8.5, 9.0), (69, 9.0, 12.0),
                    (55, 12.0, 16.0), (59, 13.0, 13.5)]:
        ns.notes.add(pitch=p, velocity=80, start_time=a, end_time=b)
    ns.total_time = 16.0
    out.append(ns)
    return out


@pytest.mark.parametrize("cfg", [ENC, melody.EncodingConfig(steps_per_quarter=3, key_normalize=True)])
def test_array_split_and_quantize_give_note_seqs_events(tmp_path, cfg):
    for i, ns in enumerate(_sequences(tmp_path)):
        for pickup in (0.0, 1.0):
            got = melody.extract_melody(ns, cfg, pickup)
            want = _reference(ns, cfg, pickup)
            np.testing.assert_array_equal(got[0], want[0], err_msg=f"sequence {i}")
            np.testing.assert_array_equal(got[1], want[1], err_msg=f"sequence {i}")
