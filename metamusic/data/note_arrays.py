"""Notes as arrays through melody extraction's steps, with note_seq's arithmetic and rules.

melody.extract_melody lets note_seq split a NoteSequence at its tempo and meter changes and
quantize each piece's tempo and meter (with their errors); the notes, which are most of
that work, go through these functions instead of through one proto each: cut at the same
split times, quantized with the same float64 operations, reduced to the skyline, and
written as Melody events by note_seq's Melody rules. tests/data/test_melody_arrays.py
checks the result against note_seq's proto path.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def split_times(sequence) -> list[float]:
    """The piece boundaries of note_seq's `split_note_sequence_on_time_changes(skip_splits_inside_notes=False)`:
    0, each real tempo or meter change before the end, and the end."""
    from note_seq import constants
    from note_seq.protobuf import music_pb2

    num, den, qpm = 4, 4, constants.DEFAULT_QUARTERS_PER_MINUTE
    changes = sorted(list(sequence.time_signatures) + list(sequence.tempos), key=lambda t: t.time)
    times = [0.0]
    for c in changes:
        if c.time >= sequence.total_time:
            continue
        if isinstance(c, music_pb2.NoteSequence.TimeSignature):
            if (c.numerator, c.denominator) == (num, den):
                continue
            num, den = c.numerator, c.denominator
        else:
            if c.qpm == qpm:
                continue
            qpm = c.qpm
        if c.time > times[-1]:
            times.append(c.time)
    if sequence.total_time > times[-1]:
        times.append(sequence.total_time)
    return times


@dataclasses.dataclass
class PieceNotes:
    """Pitched notes as arrays, each with its piece and its times within the piece, in note_seq's order
    (by start time, ties in the sequence's order)."""

    piece: np.ndarray
    start: np.ndarray
    end: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray

    @classmethod
    def split(cls, notes, times: list[float]) -> "PieceNotes":
        """As note_seq's `_extract_subsequences` cuts notes at `times` (float64 throughout, as the protos)."""
        start = np.array([n.start_time for n in notes], np.float64)
        end = np.array([n.end_time for n in notes], np.float64)
        pitch = np.array([n.pitch for n in notes], np.int64)
        velocity = np.array([n.velocity for n in notes], np.int64)
        order = np.argsort(start, kind="stable")
        start, end, pitch, velocity = start[order], end[order], pitch[order], velocity[order]
        t = np.asarray(times, np.float64)
        piece = np.searchsorted(t, start, side="right") - 1
        keep = (start >= t[0]) & (piece < len(t) - 1) if len(t) > 1 else np.zeros(len(start), bool)
        piece, start, end, pitch, velocity = piece[keep], start[keep], end[keep], pitch[keep], velocity[keep]
        return cls(piece, start - t[piece], np.minimum(end, t[piece + 1]) - t[piece], pitch, velocity)

    def count(self, i: int) -> int:
        return int(np.count_nonzero(self.piece == i))


def skyline(start: np.ndarray, end: np.ndarray, pitch: np.ndarray) -> list[int]:
    """The top voice, as indices into the arrays of quantized steps: at each onset the highest note, unless a
    higher note is still held (then it is left out)."""
    order = np.lexsort((-pitch, start))  # lexsort is stable, as `sorted`
    kept, held_end, held_pitch, last_start = [], -1, -1, None
    for k, s, e, p in zip(order.tolist(), start[order].tolist(), end[order].tolist(), pitch[order].tolist()):
        if s == last_start:
            continue
        last_start = s
        if s < held_end and p < held_pitch:
            continue
        kept.append(k)
        held_end, held_pitch = e, p
    return kept


def melody_events(starts: list[int], ends: list[int], pitches: list[int], spb: int) -> list[int] | None:
    """note_seq's `Melody.from_quantized_sequence(gap_bars=10**9, ignore_polyphonic_notes=True, pad_end=True)`
    of notes with distinct, rising start steps (the skyline's), on a plain list: the melody opens on the bar line
    before its first note; each note writes its pitch, no-events while it sounds and a note-off where it ends,
    cutting off what a longer earlier note wrote after that; a note still sounding where the list grows gets a
    note-off there; the last note-off is dropped and the end padded to a whole bar. None where note_seq would
    end the melody at a gap of 10**9 bars."""
    from note_seq import melodies_lib

    if not starts:
        return []
    held, off = -2, -1  # note_seq's MELODY_NO_EVENT, MELODY_NOTE_OFF
    first = starts[0] - starts[0] % spb
    if starts[-1] - first >= 10**9 * spb:
        return None
    ev: list[int] = []

    def grow(n):  # Melody.set_length to a longer length
        old = len(ev)
        ev.extend([held] * (n - old))
        for i in range(old - 1, -1, -1):
            if ev[i] == off:
                break
            if ev[i] != held:
                ev[old] = off
                break

    for s, e, p in zip(starts, ends, pitches):
        s, e = s - first, e - first
        if s >= e:
            raise melodies_lib.BadNoteError(f"Start step does not precede end step: start={s}, end={e}")
        if e + 1 > len(ev):
            grow(e + 1)
        else:
            del ev[e + 1:]
        ev[s] = p
        ev[s + 1:e] = [held] * (e - s - 1)
        ev[e] = off
    if ev[-1] == off:
        del ev[-1]
    if len(ev) % spb:
        grow(len(ev) + (-len(ev) % spb))
    return ev
