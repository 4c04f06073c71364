"""Builds a held-out dance-type benchmark from the bundled corpus: a training folder without Ryan's
Mammoth Collection, and Ryan's hornpipes, reels, jigs and strathspeys as a folder no run has trained on.

The question it asks is the one a user with a folder of dance tunes asks: five tunes of each dance type,
can a classifier trained on other music tell them apart? Jigs (6/8) differ by meter; hornpipes, reels
and strathspeys share 4/4 or 2/4 and differ in rhythm and phrasing. In the default split Ryan's (and
O'Neill's) dance types are meta-train styles, so their tunes are dropped from any `eval.root` as seen in
training; here the training folder holds no Ryan's tune.

    python examples/dance_holdout_corpus.py --out=/tmp/dance
    python run_relation.py --config=configs/relation.py --workdir=runs/dance --mode=train \
        --config.data.root=/tmp/dance/train --config.meta.algorithm=protonet,r2d2
    python run_relation.py --config=configs/relation.py --workdir=runs/dance --mode=eval \
        --config.data.root=/tmp/dance/train --config.meta.algorithm=protonet,r2d2 \
        --config.eval.root=/tmp/dance/heldout --config.data.ways=4 --config.eval.shots='(1,5)'

OUT/train/<style>/ holds every other bundled ABC style with at least 40 tunes (cut out of the tunebooks as
`small_styles_corpus.py` does) and links to the Bach, Monteverdi and Trecento score files (Palestrina's
masses are left out: they are slow to parse and far from dance music). OUT/heldout/<style>/ holds the four
dance types.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import small_styles_corpus  # noqa: E402

from metamusic.data.corpus import bundled_sources  # noqa: E402

HELD_OUT = ("ryans_hornpipe", "ryans_reel", "ryans_jig", "ryans_strathspey")
SCORES = ("bach", "monteverdi", "trecento")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="writes OUT/train and OUT/heldout")
    args = ap.parse_args(argv)
    train, heldout = os.path.join(args.out, "train"), os.path.join(args.out, "heldout")
    for d in (train, heldout):
        if os.path.exists(d):
            raise SystemExit(f"{d} exists; choose another --out or remove it")
    with tempfile.TemporaryDirectory() as every:
        small_styles_corpus.write(every, min_tunes=40, max_tunes=10**9)
        os.makedirs(train)
        os.makedirs(heldout)
        for name in sorted(os.listdir(every)):
            if name in HELD_OUT:
                shutil.move(os.path.join(every, name), os.path.join(heldout, name))
            elif not name.startswith("ryans_"):
                shutil.move(os.path.join(every, name), os.path.join(train, name))
    for src in bundled_sources():
        if src.name in SCORES:
            folder = os.path.join(train, src.name)
            os.makedirs(folder)
            for f in src.files:
                os.symlink(f, os.path.join(folder, os.path.basename(f)))
    print(f"train: {len(os.listdir(train))} styles in {train}; held out: {', '.join(sorted(os.listdir(heldout)))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
