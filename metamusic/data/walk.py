"""Folder walks that read each real folder and file once, whatever symlinks a user corpus holds.

A plain recursive glob follows directory links: `minor/loop -> ..` re-reads the
corpus root (and labels every other style's tunes `minor`), `self -> .` reads a
folder until the path-length limit. `music_files` follows a link only into a real
folder not read yet and not the root (or above), and never into a folder that
`avoid` reserves (another style's folder), nor through a file link into one; every link it does not follow, every
file reached a second time through a link, and every link to nothing (a music file's name whose target
is gone) becomes one line in `notes`.
"""

from __future__ import annotations

import os

from metamusic.data.formats import SUPPORTED_EXTS


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def music_files(top: str, *, avoid=(), root: str | None = None, seen_dirs: set | None = None,
                seen_files: dict | None = None, notes: list | None = None) -> list[str]:
    """Supported music files under `top` (sorted, paths as reached from `top`; hidden names skipped).

    Args:
      avoid: real folders not to enter, nor to read a file of through a link (e.g. the other styles' folders of
        a corpus: a linked file stays with the style whose folder holds it, whichever style is walked first).
      root: the corpus root; a link to it or to a folder above it is not followed. Default `top`.
      seen_dirs: real folders already read; seen_files: {real path: the path it was first read as}; both shared
        across calls (across a corpus's styles).
      notes: receives one line per link not followed, file skipped as already read, or link to nothing.
    """
    seen_dirs = set() if seen_dirs is None else seen_dirs
    seen_files = {} if seen_files is None else seen_files
    notes = [] if notes is None else notes
    root_real = os.path.realpath(root or top)
    avoid = [os.path.realpath(a) for a in avoid]
    seen_dirs.add(os.path.realpath(top))
    out = []
    for dirpath, dirs, names in os.walk(top, followlinks=True):
        keep = []
        for d in sorted(dirs):
            if d.startswith("."):
                continue
            full = os.path.join(dirpath, d)
            real = os.path.realpath(full)
            why = None
            if real in seen_dirs:
                why = "a folder already read (a link loop or a second link to it)"
            elif _inside(root_real, real):
                why = "the corpus root or a folder above it"
            elif any(_inside(real, a) for a in avoid):
                why = "another style's folder"
            if why:
                notes.append(f"did not follow link {full} -> {real}: {why}")
                continue
            seen_dirs.add(real)
            keep.append(d)
        dirs[:] = keep
        for n in sorted(names):
            full = os.path.join(dirpath, n)
            if n.startswith(".") or os.path.splitext(n)[1].lower() not in SUPPORTED_EXTS:
                continue
            if not os.path.isfile(full):
                if os.path.islink(full) and not os.path.exists(full):
                    notes.append(f"skipped {full}: a link to nothing ({os.readlink(full)})")
                continue
            real = os.path.realpath(full)
            if any(_inside(real, a) for a in avoid):  # the file stays with the style whose folder holds it
                notes.append(f"did not follow link {full} -> {real}: a file of another style's folder")
                continue
            if real in seen_files:
                notes.append(f"skipped {full}: the same file as {seen_files[real]}, already read")
                continue
            seen_files[real] = full
            out.append(full)
    return sorted(out)
