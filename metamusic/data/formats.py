"""Music files -> `note_seq.NoteSequence`, one record per tune, or a skip reason.

Readers, by extension:
  .mid .midi              symusic (C++; `midi_symusic`), or note_seq.midi_io: `MIDI_BACKENDS`.
  .xml .mxl .musicxml     note_seq.musicxml_reader; music21 if that fails.
  .abc                    tunebooks split on `X:` lines, one tune at a time through
                          music21 (see `ABC_BACKENDS` for why not note_seq first).
  .krn                    music21 (note_seq has no Humdrum reader).

Nothing here raises for a bad file or tune: each problem becomes a `Skip` with
its reason, so one corrupt file never aborts an ingest and every loss is counted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import warnings
from typing import Union

from metamusic.data import midi_repair
from metamusic.errors import check_choice

MIDI_EXTS = (".mid", ".midi")
MUSICXML_EXTS = (".xml", ".mxl", ".musicxml")
ABC_EXTS = (".abc",)
HUMDRUM_EXTS = (".krn",)
SUPPORTED_EXTS = MIDI_EXTS + MUSICXML_EXTS + ABC_EXTS + HUMDRUM_EXTS

# "music21": every ABC tune goes through music21, so a style is never half-parsed
#   by one parser and half by another with different tie/tuplet/grace-note rules.
# "note_seq_first": note_seq's parser (much faster; docs/design_notes.md#abc-parsing) where it succeeds, music21
#   for the rest (note_seq rejects any tune with a rest, chord, voice or part).
ABC_BACKENDS = ("music21", "note_seq_first")
# "symusic": symusic's C++ parser builds the NoteSequence note_seq's reader would (midi_symusic.py); the files
#   where the two could differ are read by note_seq, so the tokens are the same (docs/data.md#midi-readers).
# "note_seq": note_seq.midi_io (pretty_midi and mido, in Python) after midi_repair, for every file.
MIDI_BACKENDS = ("symusic", "note_seq")

_SECONDS_PER_QUARTER = 0.5  # music21 scores are written out at a fixed 120 qpm.

# A MIDI file larger than this is skipped unread, with its size as the reason. A file that size holds hundreds of
# thousands of notes: a performance or a collection rather than a tune, and where symusic declines it, note_seq's
# reader (mido, pretty_midi: Python objects per event) needs gigabytes of memory and minutes. A folder's every
# other file is still read. Set it higher (formats.MAX_MIDI_BYTES = ...) to read such files anyway.
MAX_MIDI_BYTES = 4 * 2**20


@dataclasses.dataclass
class Tune:
    """One readable tune: its NoteSequence and the metadata we keep for labeling."""

    sequence: object  # note_seq.NoteSequence (proto; untyped to keep imports lazy)
    meta: dict


@dataclasses.dataclass
class Skip:
    """A file or tune that could not be read, and why."""

    path: str
    index: Union[int, str, None]  # the ABC `X:` number, or None for a whole file
    reason: str
    title: str = ""


Record = Union[Tune, Skip]


def read_file(path: str, abc_backend: str = "music21", midi_backend: str = "symusic") -> list[Record]:
    """Reads every tune of a music file. Never raises for bad content."""
    check_choice("abc_backend", abc_backend, ABC_BACKENDS)
    check_choice("midi_backend", midi_backend, MIDI_BACKENDS)
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext in MIDI_EXTS:
            return [_read_midi(path, midi_backend)]
        if ext in MUSICXML_EXTS:
            return [_read_musicxml(path)]
        if ext in ABC_EXTS:
            return read_abc_tunebook(path, abc_backend)
        if ext in HUMDRUM_EXTS:
            return [_read_with_music21(path, _file_meta(path))]
    except Exception as e:  # noqa: BLE001 - a reader bug must not abort an ingest
        return [Skip(path, None, f"{type(e).__name__}: {_short(e)}")]
    return [Skip(path, None, f"unsupported extension {ext!r}; supported: {list(SUPPORTED_EXTS)}")]


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _short(e: BaseException, n: int = 160) -> str:
    s = " ".join(str(e).split())
    if not s:  # mido's EOFError on a cut file says nothing itself
        s = "the file ends early" if isinstance(e, EOFError) else "no message"
    return s if len(s) <= n else s[: n - 3] + "..."


def _file_meta(path: str, title: str = "") -> dict:
    return {"title": title or _stem(path), "path": path, "index": None,
            "origin": "", "rhythm": "", "meter": "", "key": ""}


def _check_bytes(path: str) -> Skip | None:
    if os.path.getsize(path) == 0:
        return Skip(path, None, "empty file")
    return None


def _read_midi(path: str, backend: str = "symusic") -> Record:
    from note_seq import midi_io

    bad = _check_bytes(path)
    if bad:
        return bad
    size = os.path.getsize(path)
    if size > MAX_MIDI_BYTES:
        return Skip(path, None, f"a MIDI file of {size / 2**20:.1f} MiB, larger than formats.MAX_MIDI_BYTES "
                                f"({MAX_MIDI_BYTES / 2**20:g} MiB): a performance or a collection, not a tune; "
                                "split it, or raise the limit")
    with open(path, "rb") as f:
        head = f.read(14)
    if head[:4] == b"MThd" and len(head) == 14 and head[12] & 0x80:
        return Skip(path, None, "SMPTE time division (frames per second, no beats): neither MIDI reader converts "
                                "it; save the file again with ticks per quarter note")
    if backend == "symusic":
        from metamusic.data import midi_symusic

        try:
            with open(path, "rb") as f:
                ns = midi_symusic.read(f.read())
        except Exception:  # noqa: BLE001 - note_seq reads the file instead, and words any skip
            ns = None
        if ns is not None:
            meta = _file_meta(path)
            _fill_meter_key(meta, ns)
            return Tune(ns, meta)
    try:
        repaired, zero = midi_repair.read_repaired(path)
        ns = midi_io.midi_to_note_sequence(repaired) if zero else midi_io.midi_file_to_note_sequence(path)
    except Exception as e:  # MIDIConversionError and anything mido raises underneath
        return Skip(path, None, f"unreadable MIDI ({type(e).__name__}: {_short(e)})")
    meta = _file_meta(path, ns.sequence_metadata.title if ns.HasField("sequence_metadata") else "")
    if zero:
        meta["zero_length_notes"] = zero  # dropped (midi_repair); counted in the yield report
    _fill_meter_key(meta, ns)
    return Tune(ns, meta)


def _read_musicxml(path: str) -> Record:
    from note_seq import musicxml_reader

    bad = _check_bytes(path)
    if bad:
        return bad
    try:
        ns = musicxml_reader.musicxml_file_to_sequence_proto(path)
    except Exception as e:
        # note_seq rejects some valid scores (e.g. odd tuplets); music21 is more lenient.
        rec = _read_with_music21(path, _file_meta(path))
        if isinstance(rec, Skip):
            rec.reason = f"note_seq: {type(e).__name__}: {_short(e)}; music21: {rec.reason}"
        return rec
    meta = _file_meta(path, ns.sequence_metadata.title if ns.HasField("sequence_metadata") else "")
    _fill_meter_key(meta, ns)
    return Tune(ns, meta)


def _fill_meter_key(meta: dict, ns) -> None:
    if ns.time_signatures and not meta.get("meter"):
        ts = ns.time_signatures[0]
        meta["meter"] = f"{ts.numerator}/{ts.denominator}"


def _read_with_music21(path_or_text: str, meta: dict, fmt: str | None = None) -> Record:
    import music21
    import music21.abcFormat.translate  # noqa: F401 (not imported by `import music21`)

    label = meta.get("path", path_or_text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt == "abc":
                with _timing_only_abc(music21):
                    handler = music21.abcFormat.ABCHandler()
                    handler.process(path_or_text)
                    score = music21.abcFormat.translate.abcToStreamScore(handler)
            elif fmt:
                score = music21.converter.parse(path_or_text, format=fmt)
            else:
                if os.path.getsize(path_or_text) == 0:
                    return Skip(path_or_text, None, "empty file")
                # storePickle=False: do not write music21's parse cache into its scratch dir.
                score = music21.converter.parseFile(path_or_text, forceSource=True, storePickle=False)
    except Exception as e:
        return Skip(label, meta.get("index"), f"music21 could not parse ({type(e).__name__}: {_short(e)})",
                    meta.get("title", ""))
    try:
        ns = score_to_sequence(score)
    except Exception as e:
        return Skip(label, meta.get("index"), f"score conversion failed ({type(e).__name__}: {_short(e)})",
                    meta.get("title", ""))
    if not meta.get("meter") and ns.time_signatures:
        _fill_meter_key(meta, ns)
    pickup = _pickup_quarters(score)
    if pickup:
        meta["pickup"] = pickup
    return Tune(ns, meta)


def _pickup_quarters(score) -> float:
    """The pickup (anacrusis) before the first bar line, in quarters: music21 pads an incomplete
    first measure on the left by the missing part. 0.0 when there is none or it cannot be told."""
    try:
        parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
        measures = parts[0].getElementsByClass("Measure")
        if not len(measures):
            return 0.0
        m = measures[0]
        pad = float(m.paddingLeft or 0.0)  # the missing part: the pickup is the bar less it
        return float(m.barDuration.quarterLength) - pad if 0 < pad < float(m.barDuration.quarterLength) else 0.0
    except Exception:  # noqa: BLE001 - a missing pickup only shifts bar positions, never costs the tune
        return 0.0


@contextlib.contextmanager
def _timing_only_abc(music21):
    """Skips music21's engraving passes while it translates ABC: they cost much of its parse time and the
    tokens need none of them (docs/design_notes.md#abc-parsing).

    After parsing, `abcToStreamPart` re-bars (splitting notes at barlines into
    tied pieces), beams and picks a clef. None of it moves a note's offset or
    total duration, and `score_to_sequence` merges ties anyway, so we skip the
    three (a test checks the tokens are the same with and without this).
    The patch lives only inside this block (worker processes are single-threaded).
    """
    translate = music21.abcFormat.translate
    saved = (translate.reBar, music21.stream.Stream.makeBeams, translate.clef.bestClef)
    translate.reBar = lambda part, inPlace=True: part
    music21.stream.Stream.makeBeams = lambda self, *a, **k: self
    translate.clef.bestClef = lambda *a, **k: music21.clef.TrebleClef()
    try:
        yield
    finally:
        translate.reBar, music21.stream.Stream.makeBeams, translate.clef.bestClef = saved


def score_to_sequence(score):
    """Builds a NoteSequence straight from a music21 score's notes.

    Why not music21's MIDI writer: on some tunes of the bundled ABC it raises (duplicate
    time signatures; docs/design_notes.md#abc-parsing). Reading offsets and durations in quarter notes and
    writing them at a fixed 120 qpm keeps the timing exact. Ties are merged, grace
    notes (zero duration) dropped, each part becomes one instrument, and every chord
    tone is kept (melody extraction decides what the top voice is).
    """
    import music21
    from note_seq.protobuf import music_pb2

    ns = music_pb2.NoteSequence()
    ns.ticks_per_quarter = 220
    ns.tempos.add(time=0.0, qpm=60.0 / _SECONDS_PER_QUARTER)
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    end = 0.0
    for inst, part in enumerate(parts):
        flat = part.flatten()
        open_ties = {}  # pitch -> note proto still tied forward (music21's stripTies deep-copies: slow)
        for el in flat.notes:
            ql = float(el.quarterLength)
            if ql <= 0 or el.duration.isGrace:
                continue
            start = float(el.offset) * _SECONDS_PER_QUARTER  # activeSite is `flat` here
            stop = start + ql * _SECONDS_PER_QUARTER
            tones = el.notes if isinstance(el, music21.chord.Chord) else [el]
            for tone in tones:
                midi = int(tone.pitch.midi)
                tie = (tone.tie or el.tie)
                kind = tie.type if tie is not None else None
                prev = open_ties.get(midi)
                if kind in ("stop", "continue") and prev is not None and abs(prev.end_time - start) < 1e-6:
                    prev.end_time = stop
                    if kind == "stop":
                        del open_ties[midi]
                    continue
                note = ns.notes.add(pitch=midi, velocity=80, start_time=start, end_time=stop,
                                    instrument=inst, program=0)
                if kind == "start":
                    open_ties[midi] = note
            end = max(end, stop)
    ns.total_time = end
    first = parts[0].flatten()
    last = None
    for ts in first.getElementsByClass(music21.meter.TimeSignature):
        t = float(ts.offset) * _SECONDS_PER_QUARTER
        sig = (ts.numerator, ts.denominator)
        if sig == last or (ns.time_signatures and ns.time_signatures[-1].time == t):
            continue  # music21 repeats a signature at some barlines; keep real changes only
        ns.time_signatures.add(time=t, numerator=sig[0], denominator=sig[1])
        last = sig
    return ns


# ----------------------------------------------------------------------------- ABC

_X_LINE = re.compile(r"^X:\s*(.*)$", re.M)
_HEADER_FIELDS = {"T": "title", "O": "origin", "R": "rhythm", "M": "meter", "K": "key"}


def split_abc_tunebook(text: str) -> list[tuple[str, str]]:
    """Splits a tunebook into (X: number, tune text). Text before the first X: is a
    file header (e.g. default L: or M:), prepended to every tune as ABC intends.

    A tune written without an X: line (a title and a key after a blank line, as some collections do)
    is a tune of its own, numbered after the tune before it ("6+1": the first such tune after X:6;
    "0+1" before any X:), rather than text run on into that tune or, before the first X:, fields taken
    for the file header. A block is taken for such a tune only when its first field is T: and it has a K:
    line, so a blank line inside a tune, a comment or free text keeps today's reading."""
    starts = [m.start() for m in _X_LINE.finditer(text)]
    head_text = text[: starts[0]] if starts else text
    head_parts = _tunes_without_x(head_text, first_block=True)
    file_header = head_parts[0]
    # Only field lines of the file header carry over; comments and prose do not.
    header = "".join(l + "\n" for l in file_header.splitlines() if re.match(r"^[A-Za-z]:", l)
                     and not l.startswith(("T:", "X:")))
    out = [(f"0+{j}", "X:1\n" + header + part) for j, part in enumerate(head_parts[1:], 1)]
    for a, b in zip(starts, starts[1:] + [len(text)]):
        tune = text[a:b].strip("\n") + "\n"
        first, _, rest = tune.partition("\n")
        number = first[2:].strip()
        parts = _tunes_without_x(rest)
        if not isinstance(_int_or_str(number), int):  # music21 reads the X: field as an integer
            first = "X:1"
        out.append((number, first + "\n" + header + parts[0]))
        out += [(f"{number}+{j}", "X:1\n" + header + part) for j, part in enumerate(parts[1:], 1)]
    return out


_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)*")


def _tunes_without_x(text: str, first_block: bool = False) -> list[str]:
    """[text up to the first block that is a tune without an X: line, then each such tune's text]; [text]
    when there is none. Such a block follows a blank line (or, with first_block, opens the text), its first
    field line is T:, and it has a K: line."""
    cuts = []
    opens = ([0] if first_block else []) + [m.end() for m in _BLANK_LINES.finditer(text)]
    for at in opens:
        if cuts and not text[cuts[-1]:at].strip():
            continue  # (blank lines opening the text)
        block = text[at:]
        nxt = _BLANK_LINES.search(block)
        block = block[: nxt.start()] if nxt else block
        lines = [l for l in block.splitlines() if l.strip() and not l.lstrip().startswith("%")]
        if lines and lines[0].startswith("T:") and any(l.startswith("K:") for l in lines):
            cuts.append(at)
    if not cuts:
        return [text]
    bounds = [0] + cuts + [len(text)]
    return [text[a:b].strip("\n") + "\n" if i else text[a:b] for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def abc_header(tune_text: str) -> dict:
    """The first value of each header field we keep (T: O: R: M: K:)."""
    meta = {v: "" for v in _HEADER_FIELDS.values()}
    for line in tune_text.splitlines():
        m = re.match(r"^([A-Za-z]):\s*(.*)$", line)
        if not m:
            continue
        field, value = m.group(1), m.group(2).strip().strip('"')
        key = _HEADER_FIELDS.get(field)
        if key and not meta[key]:
            meta[key] = value
        if field == "K":
            break  # K: ends the tune header
    return meta


def _read_text(path: str) -> str:
    """The file's text with its line ends as newlines: UTF-8 (a leading byte-order mark dropped, as Windows
    editors write it; it would hide the first X: line), else Latin-1; CR-only (old Mac) and CRLF line ends
    become newlines, since ABC is read line by line."""
    raw = open(path, "rb").read()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # the Essen and O'Neill files are Latin-1
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def read_abc_tunebook(path: str, backend: str = "music21") -> list[Record]:
    """Every tune of an ABC tunebook, read one at a time (one bad tune costs one tune)."""
    if os.path.getsize(path) == 0:
        return [Skip(path, None, "empty file")]
    text = _read_text(path)
    if "\x00" in text:
        return [Skip(path, None, "binary data in an .abc file")]
    tunes = split_abc_tunebook(text)
    if not tunes:
        return [Skip(path, None, "no tunes (no 'X:' line)")]
    out: list[Record] = []
    for number, tune_text in tunes:
        meta = abc_header(tune_text)
        meta.update(path=path, index=_int_or_str(number))
        if backend == "note_seq_first":
            ns = _note_seq_abc(tune_text)
            if ns is not None:
                out.append(Tune(ns, meta))
                continue
        out.append(_read_with_music21(tune_text, meta, fmt="abc"))
    return out


def _note_seq_abc(tune_text: str):
    from note_seq import abc_parser

    try:
        tunes, exceptions = abc_parser.parse_abc_tunebook(tune_text)
    except Exception:
        return None
    if exceptions or len(tunes) != 1:
        return None
    return next(iter(tunes.values()))


def _int_or_str(s: str):
    try:
        return int(s)
    except ValueError:
        return s
