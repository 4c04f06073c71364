"""The symusic MIDI reader gives note_seq's tokens: on synthetic files, real MIDI files, bundled tunes written
as MIDI, and the files where the two readers pair notes differently (which go to note_seq)."""

import dataclasses
import glob
import os

import numpy as np
import pytest

import synth
from metamusic.data import files, formats, ingest, melody, midi_symusic, parse_store
from metamusic.data.corpus import Source, music21_corpus_dir
from metamusic.errors import MetamusicError

ENC = melody.EncodingConfig()


def _same_records(path, enc=None):
    """Both readers' records of one file, compared field by field (tokens, bar positions, hash, metadata)."""
    a = files.tune_records(path, enc or ENC, midi_backend="note_seq")
    b = files.tune_records(path, enc or ENC, midi_backend="symusic")
    assert len(a) == len(b) == 1
    (ra,), (rb,) = a, b
    assert ra[0] == rb[0], (path, ra, rb)
    if ra[0] == "ok":
        np.testing.assert_array_equal(ra[1], rb[1], err_msg=path)
        np.testing.assert_array_equal(ra[4], rb[4], err_msg=path)
        assert ra[2:4] == rb[2:4], path
    else:
        assert ra == rb
    return ra


def _sequence_fields(ns, program: bool = True):
    return (sorted((n.pitch, n.velocity, n.start_time, n.end_time, n.is_drum, n.program if program else 0)
                   for n in ns.notes),
            [(t.time, t.qpm) for t in ns.tempos], [(t.time, t.numerator, t.denominator) for t in ns.time_signatures],
            [(k.time, k.key, k.mode) for k in ns.key_signatures], ns.total_time, ns.ticks_per_quarter,
            # each named instrument with its notes (data.melody="marked" keeps a named track's notes)
            sorted((i.name, sorted((n.pitch, n.start_time) for n in ns.notes if n.instrument == i.instrument))
                   for i in ns.instrument_infos))


@pytest.mark.parametrize("seed", range(8))
def test_synthetic_multitrack_files_give_the_same_sequence_and_tokens(tmp_path, seed):
    """Several tracks, drums, block chords, a tempo and meter change: read by symusic (no fallback), with the
    NoteSequence fields and the tokens of note_seq's reader (times to the last bit)."""
    path = synth.write_midi(str(tmp_path / "m.mid"), seed=seed, n_bars=8 + 8 * (seed % 3), drums=seed % 4 != 1,
                            chords=seed % 4 != 2, changes=seed % 4 != 3, low=seed == 5)
    ns, why = midi_symusic.read_why(open(path, "rb").read())
    assert why == ""
    ref = formats.read_file(path, midi_backend="note_seq")[0]
    assert _sequence_fields(ns) == _sequence_fields(ref.sequence)
    assert _same_records(path)[0] == "ok"


def _real_midi_files():
    import music21

    root = os.path.dirname(music21.__file__)
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return sorted(glob.glob(os.path.join(root, "midi", "testPrimitive", "*.mid")) +
                  glob.glob(os.path.join(root, "omr", "*.mid")) + glob.glob(os.path.join(here, "examples", "*", "*.mid")))


def test_real_midi_files_give_the_same_tokens():
    """music21's test MIDI files (several writers: two tempos at one tick, meta events on later tracks,
    overlapping notes, zero-length notes) and the repo's generated examples."""
    paths = _real_midi_files()
    assert len(paths) >= 20
    kinds = [_same_records(p)[0] for p in paths]
    assert kinds.count("ok") >= 15
    # the melody a file marks by its track names (test12.mid: SOPRANO, ALTO, ...) is the same track either way
    marked = dataclasses.replace(ENC, melody="marked")
    assert [_same_records(p, marked)[0] for p in paths] == kinds
    direct = [p for p in paths if midi_symusic.read_why(open(p, "rb").read())[1] == ""]
    assert len(direct) >= len(paths) // 2  # most are read by symusic itself, not handed back to note_seq


def test_bundled_tunes_written_as_midi_give_the_same_tokens(tmp_path):
    """The bundled corpus holds no MIDI: a sample of its tunes (jigs, reels, Essen songs, a four-part chorale
    with a pickup) read as the corpus reads them, written with note_seq's MIDI writer, then read both ways."""
    from note_seq import midi_io

    root = music21_corpus_dir()
    tunes = []
    for book, n in (("oneills1850/0701-0720.abc", 3), ("oneills1850/0501-0550.abc", 2),
                    ("ryansMammoth/AndrewCareysSlipjig.abc", 1), ("essenFolksong/han1.abc", 2),
                    ("essenFolksong/altdeu10.abc", 2)):
        path = os.path.join(root, book)
        text = formats._read_text(path)
        for _, t in formats.split_abc_tunebook(text)[:n]:
            tunes.append(formats._read_with_music21(t, formats.abc_header(t), fmt="abc"))
    tunes += formats.read_file(os.path.join(root, "bach", "bwv269.mxl"))
    read = 0
    for i, rec in enumerate(tunes):
        assert isinstance(rec, formats.Tune), rec
        path = str(tmp_path / f"t{i}.mid")
        midi_io.sequence_proto_to_midi_file(rec.sequence, path)
        assert _same_records(path)[0] == "ok"
        read += midi_symusic.read_why(open(path, "rb").read())[1] == ""
    assert read >= len(tunes) - 1  # the chorale's writer overlaps two notes of one pitch in a part: note_seq reads it


def _write(path, tracks, tpq=480):
    """tracks: lists of (tick, mido message); written as a type-1 file, events in the order given per tick."""
    import mido

    mid = mido.MidiFile(ticks_per_beat=tpq)
    for events in tracks:
        tr = mido.MidiTrack()
        last = 0
        for _, (tick, m) in sorted(enumerate(events), key=lambda e: (e[1][0], e[0])):
            tr.append(m.copy(time=tick - last))
            last = tick
        mid.tracks.append(tr)
    mid.save(path)
    return path


def _melody(pitches=(60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65), channel=0, start=0, q=480, vel=80):
    import mido

    out = []
    for i, p in enumerate(pitches):
        out += [(start + q * i, mido.Message("note_on", note=p, velocity=vel, channel=channel)),
                (start + q * (i + 1), mido.Message("note_off", note=p, velocity=0, channel=channel))]
    return out


def _meta(*items):
    import mido

    return [(t, mido.MetaMessage(kind, **kw)) for t, kind, kw in items]


def _on(t, p, ch=0, v=80):
    import mido

    return (t, mido.Message("note_on", note=p, velocity=v, channel=ch))


def _off(t, p, ch=0):
    import mido

    return (t, mido.Message("note_off", note=p, velocity=0, channel=ch))


def _program(t, prog, ch=0):
    import mido

    return (t, mido.Message("program_change", program=prog, channel=ch))


CONDUCTOR = _meta((0, "set_tempo", {"tempo": 600000}), (0, "time_signature", {"numerator": 3, "denominator": 4}),
                  (0, "key_signature", {"key": "Bbm"}), (2880, "set_tempo", {"tempo": 400000}),
                  (4320, "time_signature", {"numerator": 6, "denominator": 8}))

# name -> (tracks, why symusic hands the file to note_seq, "" when it reads it itself)
CASES = {
    "conductor track, key signature": ([CONDUCTOR, _melody()], ""),
    "program change within a track": ([CONDUCTOR, _melody()[:8] + [_program(1900, 40)] + _melody()[8:]], ""),
    "drums and a chord under the melody": ([CONDUCTOR, _melody(), _melody((36, 38) * 6, channel=9),
                                            _melody((48, 52, 55) * 4, q=480)], ""),
    # symusic leaves the zero-length B open and pairs each later B's note-off with the note-on before it
    "zero-length note, note-off first": ([CONDUCTOR, _melody() + [_off(1440, 71), _on(1440, 71)]],
                                         "a note-on without a note-off"),
    "zero-length note, note-on first": ([CONDUCTOR, _melody() + [_on(1440, 71), _off(1440, 71)]], "a zero-length note"),
    "a pitch struck again before its note-off": ([CONDUCTOR, _melody() + [_on(240, 60), _off(1000, 60)]],
                                                 "overlapping notes of one pitch"),
    "a note-on never closed": ([CONDUCTOR, _melody() + [_on(3000, 83)]], "a note-on without a note-off"),
    "tempo on a later track": ([CONDUCTOR, _melody() + _meta((1440, "set_tempo", {"tempo": 300000}))],
                               "tempo, key or meter events outside the first track"),
    "two tempos at tick 0": ([_meta((0, "set_tempo", {"tempo": 500000})) + CONDUCTOR, _melody()],
                             "tempo, meter or key events pretty_midi reads otherwise"),
    "unison in two tracks, different lengths": ([CONDUCTOR, _melody(), [_on(0, 60, 1), _off(240, 60, 1)]
                                                 + _melody(channel=1)[2:]],
                                                "one pitch at one tick in two instruments, with different ends"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_files_where_the_readers_pair_notes_differently(tmp_path, name):
    tracks, why = CASES[name]
    path = _write(str(tmp_path / "e.mid"), tracks)
    ns, got = midi_symusic.read_why(open(path, "rb").read())
    assert got == why
    if not why:
        # symusic files a note under the program at its note-on, pretty_midi at its note-off (no token reads it)
        program = "program change" not in name
        ref = formats.read_file(path, midi_backend="note_seq")[0].sequence
        assert _sequence_fields(ns, program) == _sequence_fields(ref, program)
    assert _same_records(path)[0] == "ok"


def test_the_comparison_sees_a_moved_note(tmp_path, monkeypatch):
    """The comparison can fail: a reader that moves one note by one tick gives other tokens."""
    path = synth.write_midi(str(tmp_path / "m.mid"), seed=3)
    real = midi_symusic.read_why

    def shifted(data):
        ns, why = real(data)
        melody_notes = sorted((n for n in ns.notes if n.instrument == 0), key=lambda n: n.start_time)
        melody_notes[4].start_time += 0.13  # past the next sixteenth
        return ns, why

    monkeypatch.setattr(midi_symusic, "read_why", shifted)
    with pytest.raises(AssertionError):
        _same_records(path)


def test_corrupt_midi_is_skipped_with_note_seqs_reason(tmp_path):
    for name, path in synth.write_bad_files(str(tmp_path)).items():
        if name.endswith(".mid"):
            rec = _same_records(path)
            assert rec[0] == "skip" and len(rec[3]) > 5


def test_unknown_midi_backend_names_the_field_and_choices(tmp_path):
    path = synth.write_midi(str(tmp_path / "m.mid"))
    with pytest.raises(MetamusicError, match=r"midi_backend='pretty'.*symusic.*note_seq"):
        formats.read_file(path, midi_backend="pretty")


def test_parse_store_keeps_the_readers_apart(tmp_path):
    """A MIDI file parsed by one reader is parsed again by the other (the store key names the reader); a file of
    another format is not."""
    mid = synth.write_midi(str(tmp_path / "m.mid"))
    abc = synth.write_abc_book(str(tmp_path / "b.abc"), [synth.abc_tune(1, np.random.default_rng(0))])
    src = [Source("user/x", (mid, abc), lambda meta: "x")]
    store = parse_store.ParseStore(parse_store.store_settings(ENC, "music21"))
    out = {}
    for backend in ("note_seq", "symusic", "symusic"):
        mel, _, _, parsed = ingest.ingest(src, ENC, midi_backend=backend, workers=1, progress=False,
                                          stores=(store, [store]))
        out.setdefault(backend, []).append((parsed["files_parsed"], [m.tokens for m in mel]))
    assert [p for p, _ in out["note_seq"]] == [2] and [p for p, _ in out["symusic"]] == [1, 0]
    for a, b in zip(out["note_seq"][0][1], out["symusic"][1][1]):
        np.testing.assert_array_equal(a, b)


def test_config_field_is_validated():
    from configs import maml
    from metamusic.experiments.validation import validate_data

    cfg = maml.get_config()
    assert cfg.data.midi_backend == "symusic"
    validate_data(cfg)
    cfg.data.midi_backend = "mido"
    with pytest.raises(MetamusicError, match=r"data.midi_backend='mido'.*symusic.*note_seq"):
        validate_data(cfg)


def test_a_named_melody_track_under_a_chord_track_is_read_by_both_readers(tmp_path):
    """data.melody="marked" on MIDI: a track named "Melody" under a louder chord track above it gives the
    named track's notes through either reader; the skyline takes the chords' top notes."""
    from note_seq import midi_io
    from note_seq.protobuf import music_pb2

    tune = [60, 62, 64, 65, 67, 65, 64, 62, 60]
    ns = music_pb2.NoteSequence(ticks_per_quarter=220)
    ns.tempos.add(qpm=120)
    ns.time_signatures.add(numerator=4, denominator=4)
    for i, p in enumerate(tune):
        ns.notes.add(pitch=p, start_time=i * 0.5, end_time=(i + 1) * 0.5, velocity=80, instrument=1, program=73)
        for c in (72, 76, 79):
            ns.notes.add(pitch=c, start_time=i * 0.5, end_time=(i + 1) * 0.5, velocity=90, instrument=0, program=0)
    ns.instrument_infos.add(instrument=0, name="Piano")
    ns.instrument_infos.add(instrument=1, name="Melody")
    ns.total_time = len(tune) * 0.5
    path = str(tmp_path / "named.mid")
    midi_io.sequence_proto_to_midi_file(ns, path)
    marked = dataclasses.replace(ENC, melody="marked")
    for backend in ("note_seq", "symusic"):
        (rec,) = files.tune_records(path, marked, midi_backend=backend)
        (sky,) = files.tune_records(path, ENC, midi_backend=backend)
        assert rec[0] == sky[0] == "ok", (backend, rec, sky)
        toks, sky_toks = np.asarray(rec[1]), np.asarray(sky[1])
        pitches = toks[(toks >= 2) & (toks < ENC.num_classes)] - 2 + ENC.min_note
        assert list(pitches) == tune, backend
        sky_p = sky_toks[(sky_toks >= 2) & (sky_toks < ENC.num_classes)] - 2 + ENC.min_note
        assert set(sky_p) == {79}, backend
