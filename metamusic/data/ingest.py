"""Read every file of every source into melody tokens, in parallel, losing nothing silently.

Each file is one work item: a worker reads it (formats.read_file), extracts and
encodes each tune's melody (melody.extract_events), and returns plain arrays and
dicts. Every tune or file that fails becomes a skip with its reason; the yield
report counts them per source and by reason. Results are put back in file order,
so the output does not depend on which worker finished first.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import multiprocessing
import os
import re
import sys
from typing import Optional

import numpy as np

from metamusic.data import files, formats, melody
from metamusic.data.corpus import Source
from metamusic.errors import check_choice

log = logging.getLogger("metamusic.data")
MAX_CHUNK = 64  # most files sent to a worker in one message


@dataclasses.dataclass
class Melody:
    """One usable tune: tokens (BOS + events), content hash, metadata, source name, bar positions."""

    tokens: np.ndarray
    hash: str
    meta: dict
    source: str
    style: Optional[str] = None
    pos: Optional[np.ndarray] = None  # int8, aligned with tokens (melody.positions_to_channel)


def _work(item):
    """Worker: one file -> list of ('ok', tokens, hash, meta, positions) | ('skip', path, index, reason, title)."""
    path, abc_backend, midi_backend, enc = item
    return files.tune_records(path, enc, abc_backend, midi_backend)


def _reason_kind(reason: str) -> str:
    """Groups skip reasons for the report: 'too short: 5 melody notes' -> 'too short'.

    A file both readers failed ('note_seq: ...; music21: REASON') groups by music21's reason, the last
    one tried: 'note_seq, then music21 could not parse', not a bare 'note_seq'."""
    if reason.startswith("note_seq:") and "; music21: " in reason:
        return "note_seq, then " + _reason_kind(reason.split("; music21: ", 1)[1])
    return re.split(r"[:(]", reason, maxsplit=1)[0].strip()


def ingest(sources: list[Source], enc: melody.EncodingConfig, *, abc_backend: str = "music21",
           midi_backend: str = "symusic", workers: Optional[int] = None, progress: bool = True, stores=None,
           sha1s: Optional[dict] = None):
    """Reads all sources.

    Args:
      midi_backend: the MIDI reader (formats.MIDI_BACKENDS).
      workers: processes to use; default one per core this process may run on. 1 runs in this process.
      progress: show a tqdm bar on stderr.
      stores: (user store, stores to read) of `parse_store.open_stores`, or None: a file whose
        content a store holds is not parsed again; every parsed file is added to the user store.
      sha1s: path -> SHA-1 already computed by the caller (the corpus manifest's), so no file is hashed twice.
    Returns:
      (melodies, skips, report, files): melodies in source/file/tune order with `style` set
      by the source's labeler (None when it has no style); skips as dicts; the per-source
      yield report; and how many files were parsed and how many came from a store.
    """
    items, owner = [], []
    for s in sources:
        for f in s.files:
            items.append((f, abc_backend, midi_backend, enc))
            owner.append(s)
    check_choice("midi_backend", midi_backend, formats.MIDI_BACKENDS)
    workers = workers or default_workers()
    results: list = [None] * len(items)
    digests = [None] * len(items)
    if stores is not None:
        from metamusic.data.cache import sha1_file

        midi_tag = midi_reader_tag(midi_backend)  # what a MIDI file parses to is the reader's
        for i, it in enumerate(items):
            sha1 = (sha1s or {}).get(it[0]) or sha1_file(it[0])
            digests[i] = f"{sha1}:{os.path.basename(it[0])}"  # a tune's title may be its file's name
            if os.path.splitext(it[0])[1].lower() in formats.MIDI_EXTS:
                digests[i] += midi_tag
            for st in stores[1]:
                results[i] = st.get(digests[i], it[0])
                if results[i] is not None:
                    break
    todo = [i for i in range(len(items)) if results[i] is None]
    if len(todo) < len(items):
        log.info("parse store: %d of %d files known, %d to parse", len(items) - len(todo), len(items), len(todo))
    cost = [_cost(it[0]) for it in items]
    # Costly files first, so the last minutes are not one worker alone on a big tunebook.
    order = sorted(todo, key=lambda i: -cost[i])
    bar = _bar(sum(cost[i] for i in todo), len(todo), progress and bool(todo))
    if workers <= 1 or len(todo) <= 1:
        for i in order:
            results[i] = _work(items[i])
            bar.update(cost[i])
    else:
        # spawn, not fork: the caller may have started JAX, whose threads do not survive a fork.
        ctx = multiprocessing.get_context("spawn")
        # Files of a few milliseconds each: send them in chunks, so the pool's messages do not cost as much as
        # the parsing; small enough chunks that the costly files sorted first still spread over the workers.
        chunk = max(1, min(MAX_CHUNK, len(todo) // (workers * 16)))
        with ctx.Pool(min(workers, len(todo))) as pool:  # each worker costs its imports: none idle
            it = pool.imap_unordered(_indexed_work, ((i, items[i]) for i in order), chunksize=chunk)
            for i, res in it:
                results[i] = res
                bar.update(cost[i])
    bar.close()
    if stores is not None:
        for i in todo:
            stores[0].put(digests[i], items[i][0], results[i])

    melodies, skips = [], []
    report = {s.name: collections.Counter() for s in sources}
    reasons = {s.name: collections.Counter() for s in sources}
    for k, src in enumerate(owner):
        res, results[k] = results[k], None  # consumed: the records are not held twice (here and as melodies)
        r = report[src.name]
        r["files"] += 1
        for rec in res:
            if rec[0] == "skip":
                _, path, index, reason, title = rec
                skips.append({"source": src.name, "path": path, "index": index, "reason": reason, "title": title})
                log.info("skipped %s%s: %s", path, f" X:{index}" if index is not None else "", reason)
                reasons[src.name][_reason_kind(reason)] += 1
                r["skipped"] += 1
                r["tunes_found"] += 1  # a failed file counts as one tune: nothing is lost from the count
                r["files_unreadable"] += index is None
                continue
            _, tokens, h, meta, pos = rec
            r["tunes_found"] += 1
            r["zero_length_notes"] += meta.get("zero_length_notes", 0)
            m = Melody(tokens, h, meta, src.name, src.label(meta), pos)
            if m.style is None:
                r["unlabeled"] += 1
            else:
                r["melodies"] += 1
            melodies.append(m)
    rep = {}
    for name, r in report.items():
        found = r["tunes_found"]
        rep[name] = {"files": r["files"], "files_unreadable": r["files_unreadable"], "tunes_found": found,
                     "melodies": r["melodies"], "skipped": r["skipped"], "unlabeled": r["unlabeled"],
                     "yield": round((r["melodies"] + r["unlabeled"]) / found, 4) if found else 0.0,
                     "zero_length_notes_dropped": r["zero_length_notes"],
                     "skip_reasons": dict(reasons[name].most_common())}
    if skips:
        log.warning("skipped %d tunes or files; reasons per source are in the yield report", len(skips))
    rep_files = {"files_parsed": len(todo), "files_from_parse_store": len(items) - len(todo)}
    return melodies, skips, rep, rep_files


def default_workers() -> int:
    """One parse process per core this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def midi_reader_tag(midi_backend: str) -> str:
    """The parse-store key suffix of a MIDI file read by `midi_backend`: the reader and its version, so a
    store never answers for another reader (note_seq's versions are in the store's own key), and the size
    limit (`formats.MAX_MIDI_BYTES`), so a file stored as a tune before it is not taken from the store past it."""
    limit = f":max{formats.MAX_MIDI_BYTES}"
    if midi_backend == "note_seq":
        return limit
    from importlib import metadata

    return f":{midi_backend}-{metadata.version(midi_backend)}{limit}"


def _indexed_work(arg):
    i, item = arg
    return i, _work(item)


# Parse seconds per MB by format, rounded from a timing of the bundled corpus (docs/design_notes.md#ingest-cost-per-mb).
# The cost of a file depends on its format far more than on its size or on being one file, so neither a count of
# files nor bytes alone give a usable ETA; bytes times the format's rate does.
_SECONDS_PER_MB = {".abc": 50.0, ".krn": 40.0, ".mxl": 6.0, ".xml": 0.3, ".musicxml": 0.3, ".mid": 5.0, ".midi": 5.0}


def _cost(path: str) -> int:
    """Estimated parse milliseconds of one file (an int, so the bar's sum is exact), for the ETA and work order."""
    ext = os.path.splitext(path)[1].lower()
    return 5 + int(os.path.getsize(path) / 1e3 * _SECONDS_PER_MB.get(ext, 10.0))


def _bar(total_cost: int, n_files: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total_cost, desc=f"ingest ({n_files} files)", disable=not enabled, dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
                mininterval=0.5 if sys.stderr.isatty() else 30)
