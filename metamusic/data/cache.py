"""The encoded-corpus cache: one .npz per (sources, settings), written atomically.

A cache file holds the token arrays plus a JSON manifest: the settings it was
built with, the library versions that parsed it, and every source file's size,
mtime and SHA-1. It is used only if all of those still match; a file whose size
or mtime changed is re-hashed, so touching a file costs a hash, not a re-ingest,
while an edited one triggers a rebuild. Writes go to a temporary file in the same
folder, then `os.replace`: a killed ingest leaves the old cache or none, never a
half-written one under the real name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from typing import Optional

import numpy as np

log = logging.getLogger("metamusic.data")

CACHE_VERSION = 8  # 8: ABC tunebooks as PARSE_VERSION 3 reads them; 7: exact duplicates listed, the MIDI size limit; 6: near-duplicate rarity holds in small corpora (NearDupConfig.min_df); 5: removed near-duplicates name their style and partner; 4: near-duplicates removed; 3: bar positions beside the tokens. Bump when the cache layout or the ingest logic changes


def default_cache_dir() -> str:
    """$METAMUSIC_CACHE_DIR, else $XDG_CACHE_HOME/metamusic, else ~/.cache/metamusic."""
    if os.environ.get("METAMUSIC_CACHE_DIR"):
        return os.path.expanduser(os.environ["METAMUSIC_CACHE_DIR"])  # (quoted, '~/x' reaches us unexpanded)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "metamusic")


def library_versions() -> dict:
    from importlib import metadata

    out = {}
    for lib in ("note-seq", "music21", "numpy", "symusic"):
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = None
    return out


def settings_key(settings: dict) -> str:
    blob = json.dumps({"version": CACHE_VERSION, **settings}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def sha1_file(path: str) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(paths) -> list:
    """[path, size, mtime_ns, sha1] per file, for the manifest."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append([p, st.st_size, st.st_mtime_ns, sha1_file(p)])
    return out


def stale_reason(manifest: dict, settings: dict, paths) -> Optional[str]:
    """Why a cache no longer matches its sources and settings, or None if it does."""
    if manifest.get("version") != CACHE_VERSION:
        return f"cache layout version {manifest.get('version')} != {CACHE_VERSION}"
    if manifest.get("settings") != json.loads(json.dumps(settings, sort_keys=True, default=str)):
        return "encoding or split settings changed"
    if manifest.get("libraries") != library_versions():
        return f"library versions changed ({manifest.get('libraries')} -> {library_versions()})"
    recorded = {f[0]: f for f in manifest.get("files", [])}
    paths = list(paths)
    if set(recorded) != set(paths):
        added, removed = set(paths) - set(recorded), set(recorded) - set(paths)
        return f"source files changed: {len(added)} added, {len(removed)} removed"
    for p in paths:
        _, size, mtime, digest = recorded[p]
        st = os.stat(p)
        if (st.st_size, st.st_mtime_ns) != (size, mtime) and sha1_file(p) != digest:
            return f"source file changed: {p}"
    return None


def save(path: str, arrays: dict, manifest: dict, payload: dict) -> None:
    """Writes arrays + manifest + JSON payload (metadata, reports) atomically."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    blob = {k: np.asarray(v) for k, v in arrays.items()}
    blob["manifest_json"] = _json_bytes(manifest)
    blob["payload_json"] = _json_bytes(payload)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: str):
    """(arrays, manifest, payload), or None if the file is missing or unreadable."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if not k.endswith("_json")}
            manifest = json.loads(z["manifest_json"].tobytes())
            payload = json.loads(z["payload_json"].tobytes())
    except Exception as e:  # noqa: BLE001 - a damaged cache is rebuilt, never trusted
        log.warning("corpus cache %s is damaged (%s: %s); rebuilding it", path, type(e).__name__, str(e)[:120])
        return None
    return arrays, manifest, payload


def _json_bytes(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj, default=str).encode(), np.uint8)
