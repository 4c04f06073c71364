"""Zero-length MIDI notes, dropped before they become long ones.

Some writers emit a note-on and its note-off at the same tick (a grace note
quantised to nothing, a "ghost" trigger), often with the note-off first.
pretty_midi (under note_seq's MIDI reader) keeps a note open when its note-off
shares its start tick, so the note sounds until the next note-off of that pitch
or the end of the track: a 4-second note where the file had none.

`drop_zero_length_notes` pairs, per track, channel and pitch, each note-off that
closes no earlier note with a note-on at the same tick, and drops both. A
note-off that closes an earlier note (a repeated note, legato) is left alone.
"""

from __future__ import annotations

import collections
import io


def _is_on(m) -> bool:
    return m.type == "note_on" and m.velocity > 0


def _is_off(m) -> bool:
    return m.type == "note_off" or (m.type == "note_on" and m.velocity == 0)


def drop_zero_length_notes(mid) -> int:
    """Removes zero-length notes from a mido.MidiFile in place; returns how many."""
    dropped = 0
    for ti, track in enumerate(mid.tracks):
        ticks, t = [], 0
        for m in track:
            t += m.time
            ticks.append(t)
        open_notes = collections.Counter()
        drop = set()
        i = 0
        while i < len(track):
            j = i
            while j < len(track) and ticks[j] == ticks[i]:
                j += 1
            ons, offs = collections.defaultdict(list), collections.defaultdict(list)
            for k in range(i, j):
                m = track[k]
                if _is_on(m):
                    ons[(m.channel, m.note)].append(k)
                elif _is_off(m):
                    offs[(m.channel, m.note)].append(k)
            for key in set(ons) | set(offs):
                closes = min(open_notes[key], len(offs[key]))
                zero = min(len(offs[key]) - closes, len(ons[key]))
                if zero:
                    drop.update(ons[key][:zero])
                    drop.update(offs[key][closes: closes + zero])
                open_notes[key] += len(ons[key]) - zero - closes
                dropped += zero
            i = j
        if drop:
            kept, last = [], 0
            for k, m in enumerate(track):
                if k in drop:
                    continue
                kept.append(m.copy(time=ticks[k] - last))
                last = ticks[k]
            track[:] = kept
    return dropped


def read_repaired(path: str):
    """(MIDI bytes with zero-length notes dropped, or None when there were none; how many)."""
    import mido

    mid = mido.MidiFile(path, clip=True)
    n = drop_zero_length_notes(mid)
    if not n:
        return None, 0
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue(), n
