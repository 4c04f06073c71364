"""Where tunes come from and which style each belongs to.

A `Source` is a list of files plus a labeling rule that maps a tune's metadata to
a style name ("collection/style"), or to None (not used, counted as unlabeled).
The collection (the part before '/') is what "styles from different source
collections" means for the meta-test split.

The embedded default is the corpus bundled inside the music21 package (no
download). Its labels, all from documented fields:
  essen/china-<province>  Essen han1/han2, province = 2nd item of `O:` ("China, Hubei, ...")
  essen/<collection>      Essen European collections by file (Erk, Boehme, ballads, ...)
  oneills/<dance>         O'Neill's Music of Ireland (1850): `R:`, else the book's section
                          by tune number (airs 1-625, jigs 701-1115, slip jigs 1116-1175,
                          reels 1176-1555, hornpipes 1556-1780)
  ryans/<dance>           Ryan's Mammoth Collection: `R:`
  aird/air, bach/chorale, palestrina/mass, monteverdi/madrigal, trecento/song
A user corpus is a folder with one subfolder per style (any supported format).
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import re
from typing import Callable, Optional

from metamusic.data import walk
from metamusic.data.formats import SUPPORTED_EXTS
from metamusic.errors import MetamusicError

log = logging.getLogger("metamusic.data")

Labeler = Callable[[dict], Optional[str]]


@dataclasses.dataclass(frozen=True)
class Source:
    name: str  # yield-report row, e.g. "essen", "oneills", "user"
    files: tuple  # absolute paths
    label: Labeler
    notes: tuple = ()  # links not followed, files reached twice (walk.music_files), for the report
    left_out: bool = False  # a user style folder not read: hidden, or a link to another style's folder or the root


def music21_corpus_dir() -> str:
    import music21  # music21 is light to import; note_seq is the slow one

    path = os.path.join(os.path.dirname(music21.__file__), "corpus")
    if not os.path.isdir(path):
        raise MetamusicError(f"music21's bundled corpus is missing at {path}; reinstall music21")
    return path


# ---------------------------------------------------------------- labeling rules

_ESSEN_EUROPE = {  # file prefix -> style; test*, variant0 are music21's test files
    "altdeu": "altdeutsch", "ballad": "ballads", "boehme": "boehme", "dva": "dva",
    "erk": "erk", "fink": "fink", "kinder": "kinder", "zuccal": "zuccalmaglio",
    "lux": "luxembourg", "lot": "lorraine", "irl": "ireland", "folkHaydn": "haydn-folk",
}
_PROVINCE_FIX = {"jianxi": "jiangxi", "heinan": "henan", "neimeng.tuoxian": "neimeng"}


def _essen_label(meta: dict) -> Optional[str]:
    stem = os.path.splitext(os.path.basename(meta["path"]))[0]
    if stem.startswith("han"):
        parts = [p for p in re.split(r"[,\s]+", meta.get("origin", "")) if p]
        if not parts or parts[0] != "China":
            return None
        # "China, Hubei, Wuhan"; "China, nan Jiangsu" (south J.) and "bei ..." (north) qualify a province
        names = [p for p in parts[1:] if p.isalpha() and p[0].isupper()]
        if not names:
            return None
        prov = names[0].lower()
        return "essen/china-" + _PROVINCE_FIX.get(prov, prov)
    prefix = re.sub(r"\d+$", "", stem)
    return "essen/" + _ESSEN_EUROPE[prefix] if prefix in _ESSEN_EUROPE else None


def _dance(rhythm: str) -> str:
    r = rhythm.strip().lower()
    r = {"slipjig": "slip jig", "double jig": "jig", "fling": "highland fling"}.get(r, r)
    return r.replace(" ", "-")


_ONEILL_SECTIONS = ((1, 625, "air"), (701, 1115, "jig"), (1116, 1175, "slip-jig"),
                    (1176, 1555, "reel"), (1556, 1780, "hornpipe"))


def _oneills_label(meta: dict) -> Optional[str]:
    if meta.get("rhythm", "").strip():
        return "oneills/" + _dance(meta["rhythm"])
    x = meta.get("index")
    for lo, hi, name in _ONEILL_SECTIONS:
        if isinstance(x, int) and lo <= x <= hi:
            return "oneills/" + name
    return None  # 626-700 and 1781-1850: marches and miscellany, no single style


def _ryans_label(meta: dict) -> Optional[str]:
    r = meta.get("rhythm", "").strip()
    return "ryans/" + _dance(r) if r else None


def _fixed(style: str) -> Labeler:
    return lambda meta: style


def bundled_sources(root: Optional[str] = None) -> list[Source]:
    """The default corpus: music21's bundled collections with documented labels."""
    c = root or music21_corpus_dir()

    def files(pattern: str, exclude: tuple = ()) -> tuple:
        out = sorted(glob.glob(os.path.join(c, pattern)))
        return tuple(f for f in out if not os.path.basename(f).startswith(exclude))

    return [
        Source("essen", files("essenFolksong/*.abc", ("test", "variant")), _essen_label),
        Source("oneills", files("oneills1850/*.abc"), _oneills_label),
        Source("ryans", files("ryansMammoth/*.abc"), _ryans_label),
        Source("aird", files("airdsAirs/*.abc"), _fixed("aird/air")),
        Source("bach", files("bach/*.mxl") + files("bach/*.xml") + files("bach/*.krn"), _fixed("bach/chorale")),
        Source("palestrina", files("palestrina/*.krn"), _fixed("palestrina/mass")),
        Source("monteverdi", files("monteverdi/*.mxl"), _fixed("monteverdi/madrigal")),
        Source("trecento", files("trecento/*.xml") + files("trecento/*.mxl"), _fixed("trecento/song")),
    ]


def folder_sources(root: str) -> list[Source]:
    """A user corpus: ROOT/<style>/**/<files>. The style is the subfolder's name.

    Paths start from the root's real path, so `data`, `./data`, `/abs/data` and a link to it name the
    same files (and the same cache)."""
    if not os.path.isdir(root):
        raise MetamusicError(f"corpus root {root!r} is not a folder; expected ROOT/<style>/<music files>")
    folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    styles = [d for d in folders if not d.startswith(".")]
    hidden = [d for d in folders if d.startswith(".")]
    if hidden:  # left out as hidden (.git, .cache, ...), but never silently: counted in the report, one warning
        log.warning("left out %d hidden folder(s) of %s (names starting with '.'): %s", len(hidden), root,
                    ", ".join(hidden[:5]) + (" ..." if len(hidden) > 5 else ""))
    if not styles:
        raise MetamusicError(f"corpus root {root!r} has no style subfolders; expected ROOT/<style>/<music files>")
    loose = [f for f in os.listdir(root) if os.path.splitext(f)[1].lower() in SUPPORTED_EXTS and not f.startswith(".")]
    if loose:  # a music file directly under the root has no style: left out, and said
        log.warning("left out %d music file(s) directly under %s (a style is a subfolder): %s", len(loose), root,
                    ", ".join(sorted(loose)[:5]) + (" ..." if len(loose) > 5 else ""))
    root = root_real = os.path.realpath(root)
    real_of, out = {}, []
    # A style folder that links to the root, above it, or to another style's folder is left out (the real
    # folder keeps its own name: plain folders are claimed before links).
    for style in sorted(styles, key=lambda d: (os.path.islink(os.path.join(root, d)), d)):
        real = os.path.realpath(os.path.join(root, style))
        same = [s for s, r in real_of.items() if r == real]
        if walk._inside(root_real, real) or same:
            line = (f"style folder left out: {os.path.join(root, style)} links to "
                    + (f"the same folder as style {same[0]!r}" if same else "the corpus root or a folder above it"))
            log.warning("user/%s: %s", style, line)
            out.append(Source(f"user/{style}", (), _fixed(style), (line,), left_out=True))
            continue
        real_of[style] = real
    seen_dirs, seen_files = set(), {}
    for style, real in sorted(real_of.items()):
        notes = []
        found = walk.music_files(os.path.join(root, style), avoid=[r for s, r in real_of.items() if s != style],
                                 root=root, seen_dirs=seen_dirs, seen_files=seen_files, notes=notes)
        for line in notes:
            log.warning("user/%s: %s", style, line)
        out.append(Source(f"user/{style}", tuple(found), _fixed(style), tuple(notes)))
    for d in hidden:
        out.append(Source(f"user/{d}", (), _fixed(d), ("hidden style folder left out (its name starts with '.')",),
                          left_out=True))
    return sorted(out, key=lambda s: s.name)


def collection_of(style: str) -> str:
    """'essen/china-hubei' -> 'essen'; a user style (no '/') is its own collection."""
    return style.split("/", 1)[0]
