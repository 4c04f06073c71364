"""Files -> melody tokens: the one reader behind the corpus, `generate --style=FOLDER` and `classify`.

`tune_records` is ingestion's per-file step with ingestion's error policy: every
tune or file that cannot be read or encoded becomes a skip with its reason (an ABC
tune in `M:4/3`, a drums-only MIDI file, random bytes), never an exception.
`read_tunes` applies it to user-given files and folders; `windows` cuts the tunes
into fixed-length model inputs.
"""

from __future__ import annotations

import collections
import logging
import os

import numpy as np

from metamusic.data import formats, melody, walk

log = logging.getLogger("metamusic.data")


def tune_records(path: str, enc: melody.EncodingConfig, abc_backend: str = "music21",
                 midi_backend: str = "symusic") -> list[tuple]:
    """One file -> list of ('ok', tokens, hash, meta, bar positions) | ('skip', path, index, reason, title).

    tokens and bar positions are aligned (BOS first, at melody.NO_POS)."""
    out = []
    try:
        records = formats.read_file(path, abc_backend, midi_backend)
    except Exception as e:  # noqa: BLE001 - readers raise many types; one file is never fatal
        return [("skip", path, None, f"unreadable ({type(e).__name__}: {formats._short(e)})", "")]
    for rec in records:
        if isinstance(rec, formats.Skip):
            out.append(("skip", rec.path, rec.index, rec.reason, rec.title))
            continue
        try:
            ev, pos = melody.extract_melody(rec.sequence, enc, float(rec.meta.get("pickup", 0.0)))
            out.append(("ok", melody.events_to_tokens(ev, enc), melody.content_hash(ev), rec.meta,
                        melody.positions_to_channel(pos)))
        except Exception as e:  # noqa: BLE001 - note_seq raises many types; each costs one tune
            reason = (str(e) if isinstance(e, melody.MelodyError)
                      else f"melody extraction failed ({type(e).__name__}: {formats._short(e)})")
            out.append(("skip", rec.meta.get("path", path), rec.meta.get("index"), reason, rec.meta.get("title", "")))
    return out


def music_files(paths) -> list[str]:
    """Files given directly, plus every supported music file under each folder (sorted; symlinks
    followed once, see walk.music_files)."""
    files, notes = [], []
    for p in paths:
        files += walk.music_files(p, notes=notes) if os.path.isdir(p) else [p]
    for line in notes:
        log.warning("%s", line)
    return files


def read_tunes(paths, enc: melody.EncodingConfig, abc_backend: str = "music21",
               metas: list | None = None, midi_backend: str = "symusic") -> tuple[list, list, list, list]:
    """Token arrays of every readable tune in `paths` (files or folders), their bar-position channels,
    their names, and skip reasons; `metas`, when given, receives each tune's metadata (meter, key, ...).

    A name is the file, and for a tune of a tunebook its `X:` number. Tunebooks joined from single-tune files
    often number every tune `X:1`, so names that repeat also get the tune's title, and those that still repeat
    their place among them (`#2`): each row of a classification table names one tune."""
    tunes, positions, names, skipped, titles = [], [], [], [], []
    for f in music_files(paths):
        for rec in tune_records(f, enc, abc_backend, midi_backend):
            if rec[0] == "skip":
                _, path, index, reason, _ = rec
                skipped.append(f"{path}{f' X:{index}' if index is not None else ''}: {reason}")
                continue
            tunes.append(rec[1])
            positions.append(rec[4])
            if metas is not None:
                metas.append(rec[3])
            idx = rec[3].get("index")
            names.append(f if idx is None else f"{f} X:{idx}")
            titles.append(rec[3].get("title", ""))
    return tunes, positions, distinct_names(names, titles), skipped


def distinct_names(names: list, titles: list) -> list:
    """`names` with the title added to each name that repeats, then `#k` (its place among the names still
    alike) to each that repeats still."""
    twice = collections.Counter(names)
    out = [f"{n} {t!r}" if twice[n] > 1 and t else n for n, t in zip(names, titles)]
    twice, seen = collections.Counter(out), collections.Counter()
    for i, n in enumerate(out):
        if twice[n] > 1:
            seen[n] += 1
            out[i] = f"{n} #{seen[n]}"
    return out


def windows(tunes: list, length: int, pad: int, positions: list | None = None):
    """Token arrays (and their bar-position channels) -> (tokens [n, T] int32, mask [n, T] float32,
    positions [n, T] int32) from each tune's start; positions are NO_POS where not given or padded."""
    tok = np.full((len(tunes), length), pad, np.int32)
    mask = np.zeros((len(tunes), length), np.float32)
    pos = np.full((len(tunes), length), melody.NO_POS, np.int32)
    for i, t in enumerate(tunes):
        t = np.asarray(t)[:length]
        tok[i, : len(t)], mask[i, : len(t)] = t, 1.0
        if positions is not None:
            pos[i, : len(t)] = np.asarray(positions[i])[:length]
    return tok, mask, pos


def tiles(tunes: list, length: int, pad: int, positions: list | None = None):
    """Every window of every tune: starts 0, T-1, 2(T-1), ... so each transition is scored once.

    (tokens [n, T] int32, mask [n, T] float32, positions [n, T] int32); a tune's last window is padded.
    """
    rows, prow = [], []
    for i, t in enumerate(tunes):
        t = np.asarray(t)
        starts = range(0, max(len(t) - 1, 1), length - 1)
        rows += [t[s: s + length] for s in starts]
        if positions is not None:
            prow += [np.asarray(positions[i])[s: s + length] for s in starts]
    return windows(rows, length, pad, prow if positions is not None else None)
