"""Builds a user-folder corpus from the bundled styles too small for training, to try a trained run on
music it never saw through the user-folder path (`--config.eval.root`).

music21's bundled collections hold styles with fewer tunes than `data.min_tunes` (Essen's Chinese
provinces Guangxi, Taiwan, Yunnan, ...; Ryan's clogs, flings and slip jigs). The default split leaves them
out, so no run trains, tunes or stops early on them. This script cuts their tunes out of the ABC
tunebooks, labelled exactly as the corpus labels them (`metamusic.data.corpus`), and writes
OUT/<style>/<style>.abc for every such style with at least --min-tunes tunes.

    python examples/small_styles_corpus.py --out=/tmp/small_styles
    python run_maml.py --config=configs/maml.py --workdir=runs/maml --mode=eval \
        --config.eval.root=/tmp/small_styles --config.eval.min_tunes=10

With --support=K it writes OUT/support/<style>/ (each style's first K tunes) and OUT/queries/<style>/ (the
rest) instead, the folders `--mode=classify` reads:

    python examples/small_styles_corpus.py --out=/tmp/styles_split --support=5
    python run_relation.py --workdir=runs/relation --mode=classify --support=/tmp/styles_split/support \
        --query=/tmp/styles_split/queries
"""

from __future__ import annotations

import argparse
import collections
import os
import re

from metamusic.data.corpus import bundled_sources

FIELDS = {"O": "origin", "R": "rhythm", "T": "title", "M": "meter"}


def tunes_of(path: str):
    """(file header, [(meta, text)]) of an ABC tunebook: each tune starts at an `X:` line."""
    text = open(path, encoding="utf-8", errors="replace").read()
    parts = re.split(r"(?m)^(?=X:)", text)
    header, out = parts[0], []
    for part in parts[1:]:
        meta = {"path": path}
        for line in part.splitlines():
            m = re.match(r"([A-Za-z]):(.*)", line)
            if not m:
                if line.strip() and not line.startswith("%"):
                    break  # the header ends where the music starts
                continue
            key, value = m.group(1), m.group(2).strip()
            if key == "X":
                meta["index"] = int(value) if value.isdigit() else value
            elif key in FIELDS and FIELDS[key] not in meta:
                meta[FIELDS[key]] = value
        out.append((meta, part))
    return header, out


def write(out: str, min_tunes: int = 10, max_tunes: int = 39, support: int = 0) -> dict:
    """Writes every bundled ABC style of min_tunes..max_tunes tunes to OUT/<style>/<style>.abc (with support=K,
    its first K tunes to OUT/support and the rest to OUT/queries); returns {style: tunes}."""
    by_style = collections.defaultdict(list)
    for src in bundled_sources():
        for path in src.files:
            if not path.endswith(".abc"):
                continue
            header, tunes = tunes_of(path)
            for meta, text in tunes:
                style = src.label(meta)
                if style:
                    by_style[style].append((header, text))
    written = {}
    for style, tunes in sorted(by_style.items()):
        if not min_tunes <= len(tunes) <= max_tunes:
            continue
        name = style.replace("/", "_")
        parts = ([(out, tunes)] if not support else
                 [(os.path.join(out, "support"), tunes[:support]),
                  (os.path.join(out, "queries"), tunes[support:])])
        for top, part in parts:
            folder = os.path.join(top, name)
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, name + ".abc"), "w", encoding="utf-8") as f:
                f.write(tunes[0][0].rstrip() + "\n\n" if tunes[0][0].strip() else "")
                for _, text in part:
                    f.write(text.rstrip() + "\n\n")
        written[name] = len(tunes)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="the folder to write OUT/<style>/<style>.abc into")
    ap.add_argument("--min-tunes", type=int, default=10, help="smallest style written")
    ap.add_argument("--max-tunes", type=int, default=39, help="largest style written (the default run's "
                                                                "data.min_tunes is 40: larger styles are in its splits)")
    ap.add_argument("--support", type=int, default=0, help="K > 0: the first K tunes of each style to OUT/support, "
                                                           "the rest to OUT/queries")
    args = ap.parse_args(argv)
    written = write(args.out, args.min_tunes, args.max_tunes, args.support)
    for name, n in written.items():
        print(f"{name}: {n} tunes")
    print(f"{len(written)} styles written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
