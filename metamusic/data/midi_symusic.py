"""MIDI -> NoteSequence through symusic (a C++ reader), giving what note_seq's reader gives.

note_seq reads MIDI through pretty_midi over mido, in Python, after `midi_repair` has
dropped zero-length notes; that is most of an ingest's time on a MIDI folder.
symusic parses the file in C++; this module builds from its score the NoteSequence
fields the melody tokens depend on, with pretty_midi's arithmetic:

  * tempo changes from the first track only (as pretty_midi), a repeated tempo ignored,
    and each tick's time as pretty_midi's tick-to-time table computes it (the same
    float operations, so quantization rounds the same way);
  * time and key signatures from the first track, at those times;
  * one instrument per (track, channel, program at the note-off), drums on channel 10,
    notes with their velocities; total_time the last note end.

Where the two readers pair note-ons and note-offs differently, `read` returns None and
the caller reads the file with note_seq, so the tokens are the same: symusic closes the
oldest open note of a key at each note-off (FIFO, a note-on of the same tick included)
and leaves a note-on without a note-off out; pretty_midi closes every open note of the
key, and `midi_repair` first drops notes whose note-on and note-off share a tick. Those
differ only when a track holds two overlapping notes of one pitch, a zero-length note,
or a note-on that symusic never closes; the first two show in symusic's notes, the last
is made visible by appending a note-off for every channel and pitch at the end of each
track (a note ending there was left open). One case stays out of sight: a zero-length
note written note-off first, followed by a stray note-off of its pitch with no note-on
between (docs/data.md#midi-readers).
Files with tempo, meter or key events outside the first track, with two different
tempos or meters at one tick, with notes past pretty_midi's last tick, or with the
same pitch starting at one tick in two instruments with different ends (where the
instruments' order would decide which one the melody keeps) go to note_seq as well, as
does any file symusic cannot read (note_seq then gives the skip reason).
"""

from __future__ import annotations

import struct

import numpy as np

MAX_TICK = 10_000_000  # pretty_midi's limit: a file with a later event is "likely corrupt"
_BIG = 0x0FFFFFFF  # the largest MIDI delta time: appended note-offs lie past any real note
_TEMPO_KEY_METER = (b"\xff\x51", b"\xff\x58", b"\xff\x59")  # meta types, whatever length follows


def _sentinel_events() -> bytes:
    """A harmless meta event taking over End-of-Track's delta, then note-offs for every channel and pitch
    _BIG ticks later, then End-of-Track."""
    out = bytearray(b"\xff\x01\x00")  # an empty text event (symusic keeps no text but lyrics and markers)
    delta = bytes([0x80 | (_BIG >> 21) & 0x7F, 0x80 | (_BIG >> 14) & 0x7F, 0x80 | (_BIG >> 7) & 0x7F, _BIG & 0x7F])
    for ch in range(16):
        out += (delta if ch == 0 else b"\x00") + bytes([0x80 | ch, 0, 0])
        for k in range(1, 128):
            out += bytes([0, k, 0])  # running status
    return bytes(out) + b"\x00\xff\x2f\x00"


_SENTINEL = _sentinel_events()


def _with_sentinels(data: bytes):
    """(the MIDI bytes with note-offs appended to each track, whether a track after the first holds tempo,
    key or time signature events), or None when the chunk layout is not the plain one (note_seq decides)."""
    if len(data) < 14 or data[:4] != b"MThd":
        return None
    hlen = struct.unpack(">I", data[4:8])[0]
    ntracks = struct.unpack(">H", data[10:12])[0]
    pos, parts, found, meta_elsewhere = 8 + hlen, [data[: 8 + hlen]], 0, False
    while pos + 8 <= len(data):
        name, n = data[pos: pos + 4], struct.unpack(">I", data[pos + 4: pos + 8])[0]
        body = data[pos + 8: pos + 8 + n]
        if len(body) < n:
            return None
        if name == b"MTrk":
            if not body.endswith(b"\xff\x2f\x00"):
                return None
            if found and any(m in body for m in _TEMPO_KEY_METER):
                meta_elsewhere = True
            body = body[:-3] + _SENTINEL
            found += 1
        parts.append(name + struct.pack(">I", len(body)) + body)
        pos += 8 + n
    if found != ntracks or pos != len(data):
        return None
    return b"".join(parts), meta_elsewhere


def read(data: bytes):
    """The NoteSequence note_seq's reader gives for these MIDI bytes, or None where this reader cannot
    promise it (see the module docstring)."""
    return read_why(data)[0]


def read_why(data: bytes):
    """(`read`'s NoteSequence, "") or (None, why note_seq must read these bytes)."""
    import symusic
    from note_seq.protobuf import music_pb2

    prepared = _with_sentinels(data)
    if prepared is None:
        return None, "not the plain chunk layout"
    data, meta_elsewhere = prepared
    if meta_elsewhere:
        return None, "tempo, key or meter events outside the first track"
    try:
        score = symusic.Score.from_midi(data)
    except Exception as e:  # noqa: BLE001 - note_seq reads it again and words the skip
        return None, f"symusic: {type(e).__name__}"
    res = score.ticks_per_quarter
    tempos = [(t.time, t.mspq) for t in score.tempos]
    sigs = [(t.time, t.numerator, t.denominator) for t in score.time_signatures]
    keys = [(k.time, k.key, k.tonality) for k in score.key_signatures]
    if (len({t for t, _ in tempos}) < len(set(tempos)) or len({s[0] for s in sigs}) < len(set(sigs))
            or any(m <= 0 for _, m in tempos) or any(n <= 0 or d <= 0 or d >= 2**31 for _, n, d in sigs)
            or any(not -7 <= k <= 7 or tonality not in (0, 1) for _, k, tonality in keys)
            or any(t >= MAX_TICK for t, *_ in tempos + sigs + keys)):
        return None, "tempo, meter or key events pretty_midi reads otherwise"
    tracks = []
    for tr in score.tracks:
        if not len(tr.notes):
            continue
        a = tr.notes.numpy()
        start, end, pitch = a["time"].astype(np.int64), (a["time"] + a["duration"]).astype(np.int64), a["pitch"]
        if end.max() >= MAX_TICK:
            return None, "a note-on without a note-off"  # a note-on left open (closed by an appended note-off), or a tick pretty_midi refuses
        if np.any(end == start):
            return None, "a zero-length note"  # a zero-length note (midi_repair drops it before note_seq reads the file)
        order = np.lexsort((start, pitch))
        s, e, p = start[order], end[order], pitch[order]
        if np.any((p[1:] == p[:-1]) & (s[1:] < e[:-1])):
            return None, "overlapping notes of one pitch"  # two overlapping notes of one pitch: the readers pair their note-offs differently
        order = np.lexsort((start, end))  # pretty_midi's order within an instrument: by note-off
        tracks.append((tr, start[order], end[order], pitch[order], a["velocity"][order]))
    if len(tracks) > 1 and _ambiguous_order(tracks):
        return None, "one pitch at one tick in two instruments, with different ends"

    # pretty_midi's tick scales (seconds per tick) from the first track's tempo events.
    scales = [(0, 60.0 / (120.0 * res))]
    for tick, mspq in tempos:
        scale = 60.0 / ((6e7 / mspq) * res)
        if tick == 0:
            scales = [(0, scale)]
        elif scale != scales[-1][1]:
            scales.append((tick, scale))
    seg_tick = np.array([t for t, _ in scales], np.int64)
    seg_scale = np.array([s for _, s in scales], np.float64)
    seg_time = np.zeros(len(scales))
    for i in range(1, len(scales)):
        seg_time[i] = seg_time[i - 1] + seg_scale[i - 1] * np.float64(seg_tick[i] - seg_tick[i - 1])

    def seconds(ticks):
        ticks = np.asarray(ticks, np.int64)
        i = np.searchsorted(seg_tick, ticks, side="right") - 1
        return seg_time[i] + seg_scale[i] * (ticks - seg_tick[i]).astype(np.float64)

    ns = music_pb2.NoteSequence()
    ns.ticks_per_quarter = res
    ns.source_info.encoding_type = music_pb2.NoteSequence.SourceInfo.MIDI
    if sigs:
        for (_, n, d), t in zip(sigs, seconds([s[0] for s in sigs])):
            ns.time_signatures.add(time=float(t), numerator=n, denominator=d)
    if keys:
        for (_, k, tonality), t in zip(keys, seconds([k[0] for k in keys])):
            ns.key_signatures.add(time=float(t), key=(7 * k + (9 if tonality else 0)) % 12, mode=tonality)
    for t, qpm in zip(seconds(seg_tick), 60.0 / (seg_scale * res)):
        ns.tempos.add(time=float(t), qpm=float(qpm))
    total = 0.0
    notes = ns.notes
    for inst, (tr, start, end, pitch, vel) in enumerate(tracks):
        program, drum = int(tr.program), bool(tr.is_drum)
        if tr.name:  # as note_seq names its instruments: the track's name (data.melody="marked" reads it)
            ns.instrument_infos.add(name=str(tr.name), instrument=inst)
        st, et = seconds(start).tolist(), seconds(end).tolist()
        for a, b, p, v in zip(st, et, pitch.tolist(), vel.tolist()):
            notes.add(pitch=p, velocity=v, start_time=a, end_time=b, instrument=inst, program=program, is_drum=drum)
        total = max(total, max(et))
    ns.total_time = total
    return ns, ""


def _ambiguous_order(tracks) -> bool:
    """Whether one pitch starts at one tick in two instruments with different ends: the melody keeps the note
    of the instrument read first, and symusic does not keep pretty_midi's order of a track's instruments."""
    start = np.concatenate([t[1] for t in tracks])
    end = np.concatenate([t[2] for t in tracks])
    pitch = np.concatenate([t[3] for t in tracks]).astype(np.int64)
    inst = np.concatenate([np.full(len(t[1]), i) for i, t in enumerate(tracks)])
    drum = np.concatenate([np.full(len(t[1]), bool(t[0].is_drum)) for t in tracks])
    keep = ~drum
    order = np.lexsort((end[keep], start[keep], pitch[keep]))
    s, e, p, i = start[keep][order], end[keep][order], pitch[keep][order], inst[keep][order]
    same = (s[1:] == s[:-1]) & (p[1:] == p[:-1])
    return bool(np.any(same & (e[1:] != e[:-1]) & (i[1:] != i[:-1])))
