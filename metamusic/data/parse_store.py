"""What each music file parsed to, keyed by the file's content: an ingest parses only files it has not seen.

Parsing (music21, note_seq) is almost all of an ingest's time: minutes for music21's
bundled corpus, while splitting, de-duplicating and caching take seconds
(docs/design_notes.md#parse-store). The corpus cache (`cache.py`) is keyed by every
setting, split settings included, so without a parse store a new `min_tunes` or
near-duplicate threshold, one added file in a user folder, or a fresh machine would
mean parsing everything again. A parse store maps a file's SHA-1 to the
records `files.tune_records` returned for it (tokens, bar positions, hash, metadata, or
skips with their reasons), for one store key: the encoding, the ABC backend, the
versions of music21 and note-seq, and `PARSE_VERSION`. Two stores are read:

  * the user's, `CACHE_DIR/parsed-<key>.npz`, rewritten after every ingest that parsed
    something (the union of what it held and the new files);
  * the one shipped in the package for music21's bundled corpus (`shipped/`), written by
    `python -m metamusic.data ship-store`; used only where its key equals this machine's
    (another music21 version parses the files itself, with one line saying why).

A file is looked up by the SHA-1 of its bytes and its file name (a tune without a title
is named after its file: byte-identical Palestrina movements under two names keep their
two titles), so a moved folder is found, an edited or renamed file is parsed again, and
a store never answers for other content. Folders are not stored: a record's own file
path is written back when it is read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from typing import Optional

import numpy as np

from metamusic.data import cache, melody

log = logging.getLogger("metamusic.data")

# Bump when what a file parses to changes (readers, melody extraction, bar positions, skip reasons).
PARSE_VERSION = 3  # 3: ABC byte-order marks, CR line ends, X: without a number, tunes without X:, MIDI in SMPTE time; 2: entries keyed by content and file name
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shipped")
_HERE = "<file>"  # stands for the record's own file path


def store_settings(enc: melody.EncodingConfig, abc_backend: str) -> dict:
    libs = cache.library_versions()
    return {"parse_version": PARSE_VERSION, "enc": melody.settings(enc), "abc_backend": abc_backend,
            "music21": libs.get("music21"), "note-seq": libs.get("note-seq")}


def store_key(settings: dict) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


class ParseStore:
    """'SHA-1:file name' of a file -> its parse records, for one store key."""

    def __init__(self, settings: dict, files: Optional[dict] = None):
        self.settings = settings
        self.files = files if files is not None else {}  # sha1 -> list of records, paths as _HERE

    def get(self, sha1: str, path: str) -> Optional[list]:
        recs = self.files.get(sha1)
        if recs is None:
            return None
        return [_swap(r, _HERE, path) for r in recs]

    def put(self, sha1: str, path: str, records: list) -> None:
        self.files[sha1] = [_swap(r, path, _HERE) for r in records]

    def save(self, path: str) -> None:
        """Atomically: tokens and positions concatenated, the rest JSON."""
        toks, poss, table, n = [], [], {}, 0
        for sha1, recs in self.files.items():
            rows = []
            for r in recs:
                if r[0] == "ok":
                    _, tokens, h, meta, pos = r
                    toks.append(np.asarray(tokens, np.int16))
                    poss.append(np.asarray(pos, np.int8))
                    rows.append(["ok", n, n + len(tokens), h, meta])
                    n += len(tokens)
                else:
                    rows.append(list(r))
            table[sha1] = rows
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=os.path.dirname(path) or ".")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(
                    f, tokens=np.concatenate(toks) if toks else np.zeros(0, np.int8),
                    positions=np.concatenate(poss) if poss else np.zeros(0, np.int8),
                    table_json=np.frombuffer(json.dumps({"settings": self.settings, "files": table}).encode(), np.uint8))
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str) -> Optional["ParseStore"]:
        """The store at `path`, or None if it is missing or unreadable (a damaged store is never trusted)."""
        if not os.path.exists(path):
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                tokens, positions = z["tokens"], z["positions"]
                blob = json.loads(z["table_json"].tobytes())
        except Exception as e:  # noqa: BLE001
            log.warning("parse store %s is damaged (%s); files are parsed again", path, type(e).__name__)
            return None
        vocab = melody.EncodingConfig(**blob["settings"]["enc"]).vocab_size
        tokens = tokens.astype(np.int8 if vocab <= 127 else np.int16)  # the dtype events_to_tokens gives
        files = {}
        for sha1, rows in blob["files"].items():
            files[sha1] = [("ok", tokens[r[1]:r[2]].copy(), r[3], r[4], positions[r[1]:r[2]].copy())
                           if r[0] == "ok" else tuple(r) for r in rows]
        return cls(blob["settings"], files)


def user_store_path(cache_dir: str, settings: dict) -> str:
    return os.path.join(cache_dir, f"parsed-{store_key(settings)}.npz")


def shipped_store_path() -> str:
    return os.path.join(SHIPPED_DIR, "parsed-music21-bundled.npz")


def open_stores(cache_dir: str, settings: dict, bundled: bool) -> tuple[ParseStore, list[ParseStore]]:
    """(the user's store to add to, every store to read: the user's, then the shipped one when it applies)."""
    user = ParseStore.load(user_store_path(cache_dir, settings))
    if user is None or user.settings != settings:
        user = ParseStore(settings)
    read = [user]
    if bundled:
        shipped = ParseStore.load(shipped_store_path())
        if shipped is not None and shipped.settings == settings:
            read.append(shipped)
        elif shipped is not None and shipped.settings.get("enc") == settings["enc"]:
            diff = {k: (shipped.settings.get(k), v) for k, v in settings.items() if shipped.settings.get(k) != v}
            log.warning("the shipped parse of the bundled corpus was made with %s; parsing the files here",
                        ", ".join(f"{k}={a} (here {b})" for k, (a, b) in diff.items()))
    return user, read


def _swap(rec, old: str, new: str):
    """The record with its own file path `old` written as `new` (in the metadata, a skip's path and reason)."""
    if rec[0] == "ok":
        _, tokens, h, meta, pos = rec
        if meta.get("path") == old:
            meta = {**meta, "path": new}
        return ("ok", tokens, h, meta, pos)
    _, p, index, reason, title = rec
    return ("skip", new if p == old else p, index, reason.replace(old, new), title)
