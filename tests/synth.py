"""Small music files the tests write: synthetic, for unit tests only.

They look like the data the project will meet: multi-track MIDI with chords,
drums and a tempo and meter change; MusicXML with two parts; ABC tunebooks with
rests, chords, ties, triplets, grace notes, odd meters and two voices; Humdrum.
"""

from __future__ import annotations

import os

import numpy as np

SCALE = ["C", "D", "E", "F", "G", "A", "B", "c", "d", "e", "f", "g", "a", "b"]


def abc_tune(x: int, rng: np.random.Generator, meter: str = "6/8", rhythm: str = "jig",
             origin: str = "", bars: int = 8, rests: bool = True) -> str:
    """One ABC tune with random steps, a rest, a chord, a tie and a triplet."""
    beats = {"6/8": 6, "7/8": 7, "3/4": 6, "4/4": 8, "9/8": 9, "2/4": 4}[meter]
    lines = [f"X:{x}", f"T:Tune {x}", f"M:{meter}", "L:1/8", f"R:{rhythm}"]
    if origin:
        lines.append(f"O:{origin}")
    lines.append("K:G")
    body, i = [], int(rng.integers(3, 10))
    for b in range(bars):
        bar = []
        for _ in range(beats):
            i = int(np.clip(i + rng.integers(-2, 3), 0, len(SCALE) - 1))
            bar.append(SCALE[i])
        if b == 1 and rests:
            bar[-1] = "z"
        if b == 2:
            bar[0] = "[GBd]"
        if b == 3:
            bar[-2] = bar[-2] + "-"
            bar[-1] = bar[-2][:-1]
        if b == 4 and beats >= 6:
            bar[:3] = ["(3" + bar[0], bar[1], bar[2]]
        if b == 5:
            bar[0] = "{g}" + bar[0]
        body.append("".join(bar))
    lines.append(" | ".join(body) + " |]")
    return "\n".join(lines) + "\n"


BAD_METER_ABC = """X:1
T:Four over three
M:4/3
L:1/8
K:G
GABc dedB|GABc d2B2|]
"""  # music21 raises BadTimeSignatureError on M:4/3; ingestion skips the tune with its reason


def write_abc_book(path: str, tunes: list[str], header: str = "") -> str:
    with open(path, "w") as f:
        f.write(header + "\n\n".join(tunes))
    return path


TWO_VOICE_ABC = """X:1
T:Two voices
M:4/4
L:1/4
K:C
V:1
c d e f|g a b c'|c' b a g|f e d c|
V:2
C D E F|G A B c|c B A G|F E D C|
"""

BROKEN_VOICE_ABC = """X:7
T:Broken voices
M:4/4
L:1/4
K:C
V:1 clef=treble
[V:1] c d e f|[V:2 g a b c'|
[V:]]] ((((( |||: :|: [[[
"""


def write_midi(path: str, seed: int = 0, drums: bool = True, chords: bool = True,
               changes: bool = True, n_bars: int = 8, low: bool = False) -> str:
    """A multi-track MIDI file: melody (top), block chords, drums; tempo and meter change."""
    from note_seq import midi_io
    from note_seq.protobuf import music_pb2

    rng = np.random.default_rng(seed)
    ns = music_pb2.NoteSequence()
    ns.ticks_per_quarter = 220
    ns.tempos.add(time=0.0, qpm=120)
    ns.time_signatures.add(time=0.0, numerator=4, denominator=4)
    base = 36 if low else 72
    t, q = 0.0, 0.5
    pitch = base
    for step in range(n_bars * 4):
        if changes and step == n_bars * 2:
            ns.tempos.add(time=t, qpm=90)
            ns.time_signatures.add(time=t, numerator=7, denominator=8)
            q = 60 / 90
        pitch = int(np.clip(pitch + rng.integers(-3, 4), base - 5, base + 7))
        ns.notes.add(pitch=pitch, velocity=90, start_time=t, end_time=t + q, instrument=0, program=73)
        if chords and step % 4 == 0:
            for p in (48, 52, 55):
                ns.notes.add(pitch=p, velocity=70, start_time=t, end_time=t + 4 * q, instrument=1, program=0)
        if drums:
            ns.notes.add(pitch=36 if step % 2 == 0 else 38, velocity=100, start_time=t, end_time=t + 0.1,
                         instrument=9, program=0, is_drum=True)
        t += q
    ns.total_time = t
    midi_io.note_sequence_to_midi_file(ns, path)
    return path


def write_musicxml(path: str, seed: int = 0, meter: str = "3/4") -> str:
    """A two-part score: soprano over a held-note alto line (alto moves under held soprano)."""
    import music21

    rng = np.random.default_rng(seed)
    s = music21.stream.Score()
    sop, alto = music21.stream.Part(), music21.stream.Part()
    sop.append(music21.meter.TimeSignature(meter))
    alto.append(music21.meter.TimeSignature(meter))
    p = 72
    for _ in range(12):
        p = int(np.clip(p + rng.integers(-2, 3), 67, 79))
        sop.append(music21.note.Note(p, quarterLength=2.0))
        alto.append(music21.note.Note(p - 7, quarterLength=1.0))
        alto.append(music21.note.Note(p - 5, quarterLength=1.0))
    s.insert(0, sop)
    s.insert(0, alto)
    s.write("musicxml", fp=path)
    return path


KERN = """**kern\t**kern
*M4/4\t*M4/4
4c\t4e
4d\t4f
4e\t4g
4f\t4a
=1\t=1
4g\t4b
4a\t4cc
4b\t4dd
4cc\t4ee
=2\t=2
2c\t2ee
2d\t2dd
==\t==
*-\t*-
"""


def write_bad_files(folder: str) -> dict:
    """Empty, truncated, random-bytes and otherwise unreadable files; name -> path."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(123)
    good = write_midi(os.path.join(folder, "_good.mid"))
    data = open(good, "rb").read()
    os.unlink(good)
    files = {
        "empty.mid": b"",
        "truncated.mid": data[: len(data) // 3],
        "random.mid": rng.bytes(500),
        "random.mxl": rng.bytes(700),
        "empty.abc": b"",
        "notunes.abc": b"just some prose, no X: field\n",
        "garbage.xml": b"<score-partwise><part id='P1'><measure><note>",
        "random.krn": rng.bytes(300),
    }
    out = {}
    for name, blob in files.items():
        p = os.path.join(folder, name)
        with open(p, "wb") as f:
            f.write(blob)
        out[name] = p
    return out


def make_style_corpus(root: str, n_tunes: int = 6, seed: int = 0) -> str:
    """ROOT/<style>/... with four styles of distinct character, mixed formats."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    specs = {"jigs": ("6/8", "jig"), "odd": ("7/8", "odd"), "waltz": ("3/4", "waltz"), "reels": ("4/4", "reel")}
    for style, (meter, rhythm) in specs.items():
        d = os.path.join(root, style)
        os.makedirs(d, exist_ok=True)
        tunes = [abc_tune(i + 1, rng, meter, rhythm) for i in range(n_tunes)]
        write_abc_book(os.path.join(d, "book.abc"), tunes)
    write_midi(os.path.join(root, "reels", "extra.mid"), seed=seed + 7)
    # The same tune two octaves down in another style: a near-duplicate across styles.
    write_midi(os.path.join(root, "waltz", "copy_of_reel.mid"), seed=seed + 7, low=True, chords=False)
    return root


def token_corpus(n_styles: int = 10, n_tunes: int = 30, length: int = 40, seed: int = 0):
    """A Corpus built from tokens directly: style k uses its own 4-pitch set and note length.

    Styles are separable by pitch content alone, so a classifier's right answer is known.
    """
    from metamusic.data import Corpus, EncodingConfig, SplitConfig

    enc = EncodingConfig()
    rng = np.random.default_rng(seed)
    tunes, style_of = [], []
    for k in range(n_styles):
        pitches = 48 + 3 * k + np.array([0, 2, 4, 7])
        dur = 1 + k % 3
        for _ in range(n_tunes):
            ev = []
            while len(ev) < length:
                ev += [int(rng.choice(pitches))] + [-2] * dur
            tunes.append(np.concatenate([[enc.bos], np.where(np.array(ev) == -2, 0, np.array(ev) - 48 + 2)]))
            style_of.append(k)
    lengths = np.array([len(t) for t in tunes])
    styles = [f"s{k}" for k in range(n_styles)]
    split_of = {s: ("test" if i < 2 else "val" if i < 4 else "train") for i, s in enumerate(styles)}
    pool = np.tile(np.array([0, 1], np.int8), len(tunes) // 2 + 1)[: len(tunes)]
    from metamusic.data.melody import meter_positions

    positions = np.concatenate([meter_positions(len(t), 16) for t in tunes])  # every tune in 4/4
    return Corpus(np.concatenate(tunes).astype(np.int8), np.concatenate([[0], np.cumsum(lengths)]),
                  np.array(style_of, np.int32), pool, styles, split_of,
                  [{"meter": "4/4", "hash": str(i)} for i in range(len(tunes))], {}, enc, SplitConfig(), "",
                  positions)
