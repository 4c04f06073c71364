"""Each format reads into a NoteSequence; bad files and tunes become skips with reasons."""

import contextlib
import os

import numpy as np
import pytest

import synth
from metamusic.data import formats, melody

CFG = melody.EncodingConfig()


def _events(rec):
    assert isinstance(rec, formats.Tune), getattr(rec, "reason", rec)
    return melody.extract_events(rec.sequence, CFG)


def test_abc_tunebook_with_rests_chords_ties_triplets_odd_meter(tmp_path):
    rng = np.random.default_rng(0)
    tunes = [synth.abc_tune(1, rng, "6/8", "jig", origin="China, Hubei, Wuhan"),
             synth.abc_tune(2, rng, "7/8", "odd"), synth.abc_tune(3, rng, "9/8", "slip jig")]
    path = synth.write_abc_book(str(tmp_path / "book.abc"), tunes, header="% file header\nL:1/8\n")
    recs = formats.read_file(path)
    assert [r.meta["index"] for r in recs] == [1, 2, 3]
    assert recs[0].meta["origin"] == "China, Hubei, Wuhan"
    assert [r.meta["meter"] for r in recs] == ["6/8", "7/8", "9/8"]
    assert recs[1].meta["rhythm"] == "odd" and recs[0].meta["title"] == "Tune 1"
    for r in recs:
        ev = _events(r)
        assert (ev >= 0).sum() >= 40  # 8 bars of notes survive rests, chords, ties and triplets


def test_abc_tie_is_one_note(tmp_path):
    path = synth.write_abc_book(str(tmp_path / "t.abc"), ["X:1\nM:4/4\nL:1/4\nK:C\nc2- c2 | d e f g | a b c' B | A G F E |\n"])
    ns = formats.read_file(path)[0].sequence
    first = sorted(ns.notes, key=lambda n: n.start_time)[0]
    assert first.pitch == 72 and first.end_time - first.start_time == pytest.approx(4 * 0.5)  # 4 quarters at 120 qpm


def test_abc_two_voices_give_the_top_voice_and_broken_tune_is_skipped(tmp_path):
    path = synth.write_abc_book(str(tmp_path / "v.abc"), [synth.TWO_VOICE_ABC, synth.BROKEN_VOICE_ABC])
    good, bad = formats.read_file(path)
    ev = _events(good)
    # Voice 1 (c d e f g a b c' ...) is an octave above voice 2; c' (84) is out of range,
    # so the melody is shifted down an octave as a whole.
    assert list(ev[ev >= 0][:8]) == [60, 62, 64, 65, 67, 69, 71, 72]
    assert isinstance(bad, formats.Skip) and bad.index == 7 and "could not parse" in bad.reason


def test_multitrack_midi_with_chords_drums_tempo_and_meter_change(tmp_path):
    path = synth.write_midi(str(tmp_path / "m.mid"))
    rec = formats.read_file(path)[0]
    assert {n.is_drum for n in rec.sequence.notes} == {True, False}
    ev = _events(rec)
    top = [n.pitch for n in sorted(rec.sequence.notes, key=lambda n: n.start_time) if n.instrument == 0]
    mel = ev[ev >= 0]
    assert len(mel) == len(top)  # the whole tune, both sides of the 4/4 -> 7/8 and tempo change
    assert list(mel) == top  # melody track is the top voice; chords below and drums are dropped


def test_musicxml_soprano_over_moving_alto(tmp_path):
    path = synth.write_musicxml(str(tmp_path / "x.musicxml"))
    rec = formats.read_file(path)[0]
    assert rec.meta["meter"] == "3/4"
    ev = _events(rec)
    sop = [n.pitch for n in sorted(rec.sequence.notes, key=lambda n: n.start_time) if n.part == 0]
    assert list(ev[ev >= 0]) == sop
    assert ((ev >= 0).nonzero()[0][1] - (ev >= 0).nonzero()[0][0]) == 8  # half note = 8 steps


def test_humdrum(tmp_path):
    p = tmp_path / "k.krn"
    p.write_text(synth.KERN)
    ev = _events(formats.read_file(str(p))[0])
    assert list(ev[ev >= 0]) == [64, 65, 67, 69, 71, 72, 74, 76, 76, 74]


@pytest.mark.parametrize("name", ["empty.mid", "truncated.mid", "random.mid", "random.mxl", "empty.abc",
                                  "notunes.abc", "garbage.xml", "random.krn"])
def test_bad_files_are_skipped_with_reasons(tmp_path, name):
    path = synth.write_bad_files(str(tmp_path))[name]
    recs = formats.read_file(path)
    assert len(recs) == 1 and isinstance(recs[0], formats.Skip)
    assert recs[0].path == path and len(recs[0].reason) > 5 and "()" not in recs[0].reason
    assert not recs[0].reason.endswith(": )"), recs[0].reason  # an exception without a message is worded


def test_unsupported_extension(tmp_path):
    p = tmp_path / "a.wav"
    p.write_bytes(b"RIFF")
    (rec,) = formats.read_file(str(p))
    assert isinstance(rec, formats.Skip) and "unsupported extension" in rec.reason


def test_fast_abc_path_keeps_every_note(tmp_path):
    """Skipping music21's engraving passes must not move or drop a note (real bundled tunes)."""
    from metamusic.data.corpus import music21_corpus_dir

    text = formats._read_text(os.path.join(music21_corpus_dir(), "oneills1850", "1176-1275.abc"))
    tunes = formats.split_abc_tunebook(text)[:8]
    fast = [formats._read_with_music21(t, {}, fmt="abc") for _, t in tunes]
    orig = formats._timing_only_abc
    formats._timing_only_abc = lambda m: contextlib.nullcontext()
    try:
        slow = [formats._read_with_music21(t, {}, fmt="abc") for _, t in tunes]
    finally:
        formats._timing_only_abc = orig

    def notes(r):
        return sorted((n.pitch, round(n.start_time, 6), round(n.end_time, 6)) for n in r.sequence.notes)

    for a, b in zip(fast, slow):
        assert notes(a) == notes(b) and len(notes(a)) > 50


def _midi_with(path, zero_length: bool, off_first: bool = True):
    """A melody of 12 quarter notes; optionally a zero-length B at the start of the 4th, as some
    writers emit it (note-off before note-on at one tick, or after it), and a later B to close it."""
    import mido

    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    events = []  # (tick, order, message)
    for i, p in enumerate((60, 62, 64, 65, 67, 71, 72, 71, 69, 67, 65, 64)):
        events += [(480 * i, 1, mido.Message("note_on", note=p, velocity=80)),
                   (480 * (i + 1), 0, mido.Message("note_off", note=p, velocity=0))]
    if zero_length:
        pair = [mido.Message("note_off", note=71, velocity=0), mido.Message("note_on", note=71, velocity=80)]
        events += [(480 * 3, 2, pair[0] if off_first else pair[1]), (480 * 3, 3, pair[1] if off_first else pair[0])]
    events.sort(key=lambda e: (e[0], e[1]))
    last = 0
    for tick, _, m in events:
        tr.append(m.copy(time=tick - last))
        last = tick
    mid.save(path)
    return path


@pytest.mark.parametrize("off_first", [True, False])  # True read as a long B before the repair
def test_zero_length_midi_notes_are_dropped_and_counted(tmp_path, off_first):
    from metamusic.data import files
    from metamusic.data.melody import EncodingConfig

    enc = EncodingConfig()
    clean = files.tune_records(_midi_with(str(tmp_path / "clean.mid"), False), enc)[0]
    zero = files.tune_records(_midi_with(str(tmp_path / "zero.mid"), True, off_first), enc)[0]
    assert clean[0] == zero[0] == "ok"
    np.testing.assert_array_equal(zero[1], clean[1])  # no long B from beat 4 on
    assert zero[3]["zero_length_notes"] == 1 and "zero_length_notes" not in clean[3]


@pytest.mark.parametrize("backend", formats.MIDI_BACKENDS)
def test_a_midi_file_over_the_size_limit_is_skipped_unread_with_its_size(tmp_path, monkeypatch, backend):
    """A MIDI file of hundreds of thousands of notes costs note_seq's reader gigabytes; over formats.MAX_MIDI_BYTES
    it is a skip naming its size and the limit, and one just under the limit still reads."""
    path = synth.write_midi(str(tmp_path / "m.mid"))
    size = os.path.getsize(path)
    monkeypatch.setattr(formats, "MAX_MIDI_BYTES", size - 1)
    (rec,) = formats.read_file(path, midi_backend=backend)
    assert isinstance(rec, formats.Skip) and "MAX_MIDI_BYTES" in rec.reason and "MiB" in rec.reason
    monkeypatch.setattr(formats, "MAX_MIDI_BYTES", size)
    assert len(_events(formats.read_file(path, midi_backend=backend)[0])) > 0


def test_abc_from_other_tunebooks_byte_order_mark_cr_line_ends_tunes_without_x(tmp_path):
    """Tunebooks as other editors and collections write them: a UTF-8 byte-order mark before the first X:
    (it hid that X:, so the first tune became the file header and its M: and K: were given to the next), old
    Mac line ends, an X: with no number, and a tune with no X: line after a blank line (run on into the tune
    before it). Each tune is read on its own, with its own meter and notes."""
    body = ("X:\nT:No number\nM:2/4\nL:1/8\nK:A\nAB cd|ef ga|ag fe|A4|]\n\n"
            "X:6\nT:Six\nM:2/4\nL:1/8\nK:D\nd>e f>d|(3efg a2|f<a d>B|A4|]\n\n"
            "T:No X\nM:3/4\nL:1/8\nK:C\nC2E2G2|c6|]\n\n"
            "% a comment block is not a tune\n\n"
            "X:8\nT:Eight\nM:3/4\nL:1/8\nK:G\nG2B2d2|g6|]\n")
    head = "T:Before any X\nM:6/8\nL:1/8\nK:Em\nEFG ABc|B3 E3|]\n\n"
    (tmp_path / "bom.abc").write_bytes(b"\xef\xbb\xbf" + body.encode())
    (tmp_path / "mac.abc").write_bytes(body.replace("\n", "\r").encode("latin-1"))
    (tmp_path / "head.abc").write_text(head + body)
    want = [("", "No number", "2/4", "A", 13), (6, "Six", "2/4", "D", 13), ("6+1", "No X", "3/4", "C", 4),
            (8, "Eight", "3/4", "G", 4)]
    for name in ("bom.abc", "mac.abc", "head.abc"):
        recs = formats.read_file(str(tmp_path / name))
        assert all(isinstance(r, formats.Tune) for r in recs), [getattr(r, "reason", "") for r in recs]
        got = [(r.meta["index"], r.meta["title"], r.meta["meter"], r.meta["key"], len(r.sequence.notes)) for r in recs]
        assert got == ([("0+1", "Before any X", "6/8", "Em", 8)] if name == "head.abc" else []) + want, (name, got)


def test_tunes_of_a_book_that_numbers_every_tune_x1_get_names_of_their_own(tmp_path):
    """A tunebook joined from single-tune files numbers every tune X:1 (as the bundled Ryan's style files
    do), so `path X:1` named several rows of a classification table: a repeated name gets the tune's title,
    and names alike still, their place."""
    from metamusic.data.files import read_tunes

    tune = "X:1\nT:{}\nM:4/4\nL:1/8\nK:G\nGABc dedB|{}|]\n\n"
    (tmp_path / "book.abc").write_text(tune.format("The Kesh", "dBAG A4") + tune.format("Out on the Ocean", "GABd g4")
                                       + tune.format("The Kesh", "gfed B4") + "X:2\nT:Two\nM:4/4\nL:1/8\nK:D\nDEFG ABcd|e4 f4|]\n")
    (tmp_path / "one.abc").write_text(tune.format("Alone", "dBAG A4"))
    tunes, _, names, skipped = read_tunes([str(tmp_path)], melody.EncodingConfig())
    book, one = str(tmp_path / "book.abc"), str(tmp_path / "one.abc")
    assert not skipped and len(tunes) == 5
    assert names == [f"{book} X:1 'The Kesh' #1", f"{book} X:1 'Out on the Ocean'", f"{book} X:1 'The Kesh' #2",
                     f"{book} X:2", f"{one} X:1"]


@pytest.mark.parametrize("backend", ["symusic", "note_seq"])
def test_a_midi_file_in_smpte_time_is_skipped_with_that_reason(tmp_path, backend):
    """SMPTE timing (frames per second, no beats): note_seq's reader had failed with "Note end time must be
    greater than start time", which sent a user looking at the notes."""
    path = synth.write_midi(str(tmp_path / "beats.mid"), seed=2)
    data = bytearray(open(path, "rb").read())
    data[12:14] = bytes([0x100 - 25, 40])  # -25 frames per second, 40 ticks per frame
    (tmp_path / "smpte.mid").write_bytes(bytes(data))
    assert isinstance(formats.read_file(path, midi_backend=backend)[0], formats.Tune)
    [rec] = formats.read_file(str(tmp_path / "smpte.mid"), midi_backend=backend)
    assert isinstance(rec, formats.Skip) and rec.reason.startswith("SMPTE time division"), rec


def test_abc_common_and_cut_time_name_the_meter_of_written_samples():
    """A support of reels in M:C| writes its samples in 2/2, not the plain 4/4 of a 16-step bar."""
    assert melody.meter_of(16, 4, ["C|", "C|", "4/4"]) == (2, 2)
    assert melody.meter_of(16, 4, ["C"]) == (4, 4) and melody.meter_of(16, 4, ["C|"]) == (2, 2)
    assert melody.meter_of(12, 4, ["C|"]) == (3, 4)  # a declared meter of another bar length is passed over
