"""NoteSequence <-> melody tokens.

Token layout (vocabulary `EncodingConfig.vocab_size`, 40 by default):
  0                     no-event (the previous note is held, or silence continues)
  1                     note-off
  2 .. num_classes-1    pitch = token - 2 + min_note (min_note..max_note-1)
  num_classes (= PAD)   padding after the end of a tune; masked out of every loss
  num_classes+1 (= BOS) start of a tune
Tokens 0..num_classes-1 are exactly note_seq's `MelodyOneHotEncoding(min_note,
max_note)` class indices (max_note exclusive, as in note_seq: 48..84 gives 38
classes), so models trained here read and write Magenta's melody encoding.
One token is one time step of 1/steps_per_quarter of a quarter note.

Metric position (the bar-position channel, beside the tokens, not in them): every
event's position in its bar in time steps, 0 on the downbeat, from the tune's time
signatures (each meter change restarts the count at its bar line; a pickup bar, which
music21 reports as the first measure's left padding, starts the count mid-bar), capped
at MAX_POS - 1; NO_POS marks BOS and padding. MidiTok's REMI Bar and Position tokens
are the same idea as separate tokens; a parallel channel leaves the vocabulary, the
sequence lengths and MIDI decoding unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re

import numpy as np

from metamusic.data import note_arrays
from metamusic.errors import MetamusicError, check_choice

NO_EVENT = 0
NOTE_OFF = 1
MAX_POS = 64  # bar positions 0..63 (a 16-quarter bar at 4 steps per quarter); longer bars are capped
NO_POS = MAX_POS  # the position of BOS and of padding
_NS_NO_EVENT, _NS_NOTE_OFF = -2, -1  # note_seq's Melody event values
MELODY_SOURCES = ("skyline", "marked")  # EncodingConfig.melody


@dataclasses.dataclass(frozen=True)
class EncodingConfig:
    """How tunes become tokens. Part of the cache key: changing any field re-ingests."""

    steps_per_quarter: int = 4  # time resolution: 4 = sixteenth notes
    min_note: int = 48  # lowest pitch kept (MIDI C3)
    max_note: int = 84  # one past the highest pitch kept (note_seq convention)
    key_normalize: bool = False  # transpose each tune to C major / A minor (note_seq's key estimate)
    min_notes: int = 8  # tunes with fewer melody notes are skipped ("too short")
    melody: str = "skyline"  # "skyline": the top voice; "marked": a part or track named as the melody, if any

    def __post_init__(self):
        check_choice("data.melody", self.melody, MELODY_SOURCES)
        if self.steps_per_quarter < 1:
            raise MetamusicError(f"steps_per_quarter={self.steps_per_quarter} must be >= 1")
        if not 0 <= self.min_note < self.max_note <= 128 or self.max_note - self.min_note < 12:
            raise MetamusicError(
                f"pitch range min_note={self.min_note}, max_note={self.max_note} must satisfy "
                "0 <= min_note, max_note <= 128 and span at least one octave (12)")

    @property
    def num_classes(self) -> int:
        return self.max_note - self.min_note + 2

    @property
    def pad(self) -> int:
        return self.num_classes

    @property
    def bos(self) -> int:
        return self.num_classes + 1

    @property
    def vocab_size(self) -> int:
        return self.num_classes + 2


def settings(enc: EncodingConfig) -> dict:
    """The encoding as a cache-key dict: fields added since caches were shipped are left out at their
    default, so existing caches (and the shipped parse store) keep their keys."""
    d = dataclasses.asdict(enc)
    if d["melody"] == "skyline":
        del d["melody"]
    return d


class MelodyError(Exception):
    """A tune that yields no usable melody (the reason becomes a skip reason)."""


def extract_events(sequence, cfg: EncodingConfig) -> np.ndarray:
    """The melody events of `extract_melody`, without their bar positions."""
    return extract_melody(sequence, cfg)[0]


def extract_melody(sequence, cfg: EncodingConfig, pickup_quarters: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The monophonic top-voice melody of a NoteSequence as note_seq events, and each event's bar position.

    With `cfg.melody="marked"` a file that names a part or track as its melody (`marked_melody`) gives
    that part's notes. Drums are dropped. Polyphony (chords, several parts or tracks) is reduced to
    its top voice by a skyline that also drops a note starting under a held higher
    note, so a Bach chorale gives its soprano rather than alto notes moving under a
    held soprano. Tempo and meter changes split the sequence (quantizing needs one
    of each); the pieces' melodies are joined, so the tune is kept whole, and each
    piece counts bar positions from its own bar line in its own meter. The melody
    is kept at its pitch if it fits [min_note, max_note), else shifted by the whole
    octaves that fit it best; single notes still outside are folded in by octaves
    (note_seq's `Melody.transpose`).

    Args:
      pickup_quarters: length of a pickup (anacrusis) before the first bar line, in quarter notes:
        the sequence's time 0 is then that far before a downbeat.
    Returns:
      (int16 note_seq Melody events: -2 no-event, -1 note-off, else pitch;
       int8 bar position of each event, 0..MAX_POS-1).
    Raises:
      MelodyError: no notes, or fewer than `cfg.min_notes`.
    """
    from note_seq import sequences_lib
    from note_seq.protobuf import music_pb2

    if cfg.melody == "marked":
        sequence = marked_melody(sequence) or sequence
    if not any(not n.is_drum and n.velocity > 0 and n.end_time > n.start_time for n in sequence.notes):
        raise MelodyError("no pitched notes (empty or drums only)")
    # note_seq splits and quantizes the tempos and meters (and their errors); the notes, which are most of
    # that work, are split and quantized below with the same arithmetic on arrays. Drums never reach the melody.
    frame = music_pb2.NoteSequence()
    frame.CopyFrom(sequence)
    del frame.notes[:]
    pieces = sequences_lib.split_note_sequence_on_time_changes(frame, skip_splits_inside_notes=False)
    notes = note_arrays.PieceNotes.split([n for n in sequence.notes if not n.is_drum], note_arrays.split_times(sequence))
    events: list[int] = []
    positions: list[np.ndarray] = []
    for i, piece in enumerate(pieces):
        if not notes.count(i):
            continue
        ev, spb = _piece_events(piece, notes, i, cfg)
        # The piece's melody starts on a bar line of its grid (note_seq aligns it), unless the
        # tune opens with a pickup: then its time 0 is `pickup` steps before the first downbeat.
        pickup = int(round(pickup_quarters * cfg.steps_per_quarter)) if i == 0 else 0
        phase = (spb - pickup) % spb if 0 < pickup < spb else 0
        events.extend(ev)
        positions.append((np.arange(len(ev)) + phase) % spb)
    ev = np.asarray(events, np.int16)
    n_notes = int((ev >= 0).sum())
    if n_notes < cfg.min_notes:
        raise MelodyError(f"too short: {n_notes} melody notes (min_notes={cfg.min_notes})")
    pos = np.minimum(np.concatenate(positions), MAX_POS - 1).astype(np.int8)
    return _fit_range(ev, cfg), pos


MELODY_NAMES = re.compile(r"\b(melody|melodie|melodia|soprano|sopran|vocals?|voice|lead|cantus|canto|tune)\b", re.I)


def marked_melody(sequence):
    """The sequence with only the notes of its marked melody part or track (a MusicXML part or MIDI track
    whose name says melody, soprano, voice, vocal, lead, ...: `MELODY_NAMES`), or None when no part is
    marked or the marked ones hold no pitched notes. The skyline of `extract_melody` takes the top voice;
    this is the choice a file states for itself."""
    from note_seq.protobuf import music_pb2

    parts = {p.part for p in sequence.part_infos if MELODY_NAMES.search(p.name or "")}
    tracks = {i.instrument for i in sequence.instrument_infos if MELODY_NAMES.search(i.name or "")}
    if not parts and not tracks:
        return None
    keep = [n for n in sequence.notes if not n.is_drum and (n.part in parts if parts else n.instrument in tracks)]
    if not keep:
        return None
    out = music_pb2.NoteSequence()
    out.CopyFrom(sequence)
    del out.notes[:]
    out.notes.extend(keep)
    return out


def _piece_events(piece, notes: note_arrays.PieceNotes, i: int, cfg: EncodingConfig) -> tuple[list[int], int]:
    """One meter-and-tempo piece (its tempo and meter; its notes are `notes` of piece i) -> (its melody events,
    steps per bar)."""
    from note_seq import sequences_lib

    q = sequences_lib.quantize_note_sequence(piece, cfg.steps_per_quarter)
    if not q.time_signatures:
        q.time_signatures.add(numerator=4, denominator=4)
    spb = sequences_lib.steps_per_bar_in_quantized_sequence(q)
    if spb % 1 or spb < 1:  # e.g. 3/32 at 4 steps per quarter: meter only sets bar length here
        del q.time_signatures[:]
        q.time_signatures.add(numerator=4, denominator=4)
        spb = sequences_lib.steps_per_bar_in_quantized_sequence(q)
    # note_seq's quantize_to_step: int(seconds * steps_per_second + 0.5); a note of zero steps gets one.
    sps = sequences_lib.steps_per_quarter_to_steps_per_second(cfg.steps_per_quarter, q.tempos[0].qpm)
    sel = notes.piece == i
    qs = (notes.start[sel] * sps + 0.5).astype(np.int64)
    qe = (notes.end[sel] * sps + 0.5).astype(np.int64)
    qe[qe == qs] += 1
    bad = np.flatnonzero((qs < 0) | (qe < 0))
    if bad.size:
        raise sequences_lib.NegativeTimeError(
            f"Got negative note time: start_step = {qs[bad[0]]}, end_step = {qe[bad[0]]}")
    on = notes.velocity[sel] > 0
    qs, qe, pitch = qs[on], qe[on], notes.pitch[sel][on]
    top = note_arrays.skyline(qs, qe, pitch)
    ev = note_arrays.melody_events(qs[top].tolist(), qe[top].tolist(), pitch[top].tolist(), int(spb))
    if ev is None:  # a gap at which note_seq ends the melody: its Melody decides
        from note_seq import melodies_lib

        for a, b, p in zip(qs[top].tolist(), qe[top].tolist(), pitch[top].tolist()):
            q.notes.add(pitch=p, velocity=1, quantized_start_step=a, quantized_end_step=b)
        mel = melodies_lib.Melody()
        mel.from_quantized_sequence(q, instrument=0, gap_bars=10**9, ignore_polyphonic_notes=True, pad_end=True)
        ev = list(mel)
    return ev, int(spb)


def _fit_range(ev: np.ndarray, cfg: EncodingConfig) -> np.ndarray:
    from note_seq import melodies_lib

    mel = melodies_lib.Melody(events=[int(e) for e in ev], steps_per_quarter=cfg.steps_per_quarter)
    if cfg.key_normalize:
        mel.squash(cfg.min_note, cfg.max_note, transpose_to_key=0)
    else:
        # Register is part of a style (a bass line is not a soprano line): keep the pitches
        # when they fit, else take the octave shift that leaves the fewest notes outside
        # (the smallest shift on ties); `transpose` folds any remaining ones in by octaves.
        pitches = ev[ev >= 0]
        shifts = sorted(range(-48, 49, 12), key=abs)
        outside = [int(((pitches + s < cfg.min_note) | (pitches + s >= cfg.max_note)).sum()) for s in shifts]
        mel.transpose(shifts[int(np.argmin(outside))], cfg.min_note, cfg.max_note)
    out = np.asarray(list(mel), np.int16)
    assert len(out) == len(ev), "range fitting must keep the length (bar positions are per event)"
    return out


def events_to_tokens(ev: np.ndarray, cfg: EncodingConfig, bos: bool = True) -> np.ndarray:
    """note_seq events -> tokens (vectorized `MelodyOneHotEncoding.encode_event`)."""
    ev = np.asarray(ev)
    if ((ev >= 0) & ((ev < cfg.min_note) | (ev >= cfg.max_note))).any():
        raise MelodyError("pitch outside the encoding range")
    tok = np.where(ev == _NS_NO_EVENT, NO_EVENT, np.where(ev == _NS_NOTE_OFF, NOTE_OFF, ev - cfg.min_note + 2))
    if bos:
        tok = np.concatenate([[cfg.bos], tok])
    return tok.astype(np.int8 if cfg.vocab_size <= 127 else np.int16)


def positions_to_channel(pos: np.ndarray, bos: bool = True) -> np.ndarray:
    """Bar positions of events -> the channel beside their tokens (NO_POS under BOS), int8."""
    pos = np.asarray(pos, np.int8)
    return np.concatenate([[NO_POS], pos]).astype(np.int8) if bos else pos


def meter_positions(length: int, steps_per_bar: int, phase: int = 0) -> np.ndarray:
    """The bar-position channel of `length` tokens (BOS first) in one meter: what generation conditions on."""
    return positions_to_channel(np.minimum((np.arange(length - 1) + phase) % max(steps_per_bar, 1), MAX_POS - 1))


def steps_per_bar_of(pos: np.ndarray) -> int:
    """The bar length (steps) a position channel shows most often: the gap between its downbeats, else
    its largest position + 1 (a tune shorter than two bars)."""
    pos = np.asarray(pos)
    down = np.flatnonzero(pos == 0)
    if len(down) >= 2:
        gaps, counts = np.unique(np.diff(down), return_counts=True)
        return int(gaps[np.argmax(counts)])
    real = pos[pos != NO_POS]
    return int(real.max()) + 1 if real.size else 16


def tokens_to_events(tokens: np.ndarray, cfg: EncodingConfig) -> np.ndarray:
    """Tokens -> note_seq events; BOS and PAD are dropped (PAD ends the tune)."""
    t = np.asarray(tokens).astype(np.int64)
    if (t == cfg.pad).any():
        t = t[: int(np.argmax(t == cfg.pad))]
    t = t[t != cfg.bos]
    if ((t < 0) | (t >= cfg.num_classes)).any():
        raise MetamusicError(f"tokens must lie in 0..{cfg.vocab_size - 1}")
    return np.where(t == NO_EVENT, _NS_NO_EVENT, np.where(t == NOTE_OFF, _NS_NOTE_OFF, t - 2 + cfg.min_note))


def meter_of(steps_per_bar: int, steps_per_quarter: int, declared=()) -> tuple[int, int]:
    """(numerator, denominator) of a bar of `steps_per_bar` steps: the most common meter in `declared` (e.g.
    the support tunes' "6/8"; ABC's "C" and "C|" are 4/4 and 2/2) whose bar has that length, else the plainest one that does (3 quarters: 3/4;
    7 eighths: 7/8; 9 eighths: 9/8)."""
    from collections import Counter

    for m, _ in Counter(declared).most_common():
        m = {"C": "4/4", "C|": "2/2"}.get(str(m).strip(), m)  # ABC's common and cut time
        try:
            num, den = (int(x) for x in str(m).split("/"))
        except ValueError:
            continue
        if den > 0 and num * 4 * steps_per_quarter == steps_per_bar * den:
            return num, den
    quarters, rest = divmod(steps_per_bar, steps_per_quarter)
    eighths = 2 * steps_per_bar / steps_per_quarter
    if rest == 0 and not (quarters % 3 == 0 and quarters > 3):
        return quarters, 4
    if eighths == int(eighths):
        return int(eighths), 8
    return steps_per_bar, 4 * steps_per_quarter


def tokens_to_sequence(tokens: np.ndarray, cfg: EncodingConfig, qpm: float = 120.0, meter=None,
                       offset_steps: int = 0):
    """Tokens -> a NoteSequence (program 0, velocity 100) through note_seq's Melody.

    meter: (numerator, denominator) declared at time 0 (note_seq's default is 4/4); offset_steps: silent
    steps before the first token, so a melody opening mid-bar (a pickup) keeps its bar positions under
    the declared meter's bar lines."""
    from note_seq import melodies_lib

    events = [_NS_NO_EVENT] * int(offset_steps) + [int(e) for e in tokens_to_events(tokens, cfg)]
    mel = melodies_lib.Melody(events=events, steps_per_quarter=cfg.steps_per_quarter)
    ns = mel.to_sequence(velocity=100, qpm=qpm)
    if meter is not None:
        del ns.time_signatures[:]
        ts = ns.time_signatures.add()
        ts.time, ts.numerator, ts.denominator = 0.0, int(meter[0]), int(meter[1])
    return ns


def tokens_to_midi(tokens: np.ndarray, cfg: EncodingConfig, path: str, qpm: float = 120.0, meter=None,
                   offset_steps: int = 0) -> None:
    from note_seq import midi_io

    midi_io.note_sequence_to_midi_file(tokens_to_sequence(tokens, cfg, qpm, meter, offset_steps), path)


def content_hash(ev: np.ndarray) -> str:
    """Transposition- and tempo-invariant fingerprint of a melody, for near-duplicates.

    The same tune in another key (intervals are kept, not pitches) or written with
    another unit note length (inter-onset times are divided by their gcd) gets the
    same hash, so copies across Essen, O'Neill's and Ryan's are caught.
    """
    ev = np.asarray(ev)
    onsets = np.flatnonzero(ev >= 0)
    pitches = ev[onsets].astype(np.int16)
    iois = np.diff(onsets).astype(np.int64)
    g = math.gcd(*iois.tolist()) if len(iois) else 1
    h = hashlib.sha1(np.diff(pitches).astype(np.int16).tobytes())
    h.update(b"|")
    h.update((iois // max(g, 1)).astype(np.int16).tobytes())
    return h.hexdigest()[:16]
