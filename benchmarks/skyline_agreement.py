"""How often the skyline melody is the melody a file marks: files whose part or track names a melody
(`data.melody.marked_melody`: soprano, melody, voice, ...) read both ways, their notes compared.

    python benchmarks/skyline_agreement.py                 # the bundled Bach chorales (Soprano parts)
    python benchmarks/skyline_agreement.py --root DIR      # any folder of MIDI/MusicXML/ABC/Humdrum files

Prints, over the files with a marked melody, the share of the marked melody's notes (onset step and
pitch) that the skyline melody of the whole file also has, the share of skyline notes that are the
marked melody's, and the share of files where the two melodies are identical.
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import numpy as np

from metamusic.data import EncodingConfig, formats, melody


def _onsets(ev: np.ndarray) -> set:
    return {(i, int(p)) for i, p in enumerate(ev) if p >= 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="", help="folder of music files (default: the bundled Bach chorales)")
    ap.add_argument("--limit", type=int, default=0, help="read at most this many files (0: all)")
    ap.add_argument("--json", default="", help="also write the figures here")
    a = ap.parse_args()
    if a.root:
        from metamusic.data.walk import music_files

        paths = music_files(a.root)
    else:
        import music21

        paths = sorted(glob.glob(os.path.join(os.path.dirname(music21.__file__), "corpus", "bach", "*.mxl")))
    paths = paths[: a.limit] if a.limit else paths
    enc = EncodingConfig()
    t0 = time.perf_counter()
    recall, precision, same, marked, read = [], [], 0, 0, 0
    for path in paths:
        for rec in formats.read_file(path):
            if not isinstance(rec, formats.Tune):
                continue
            read += 1
            only = melody.marked_melody(rec.sequence)
            if only is None:
                continue
            try:
                sky = _onsets(melody.extract_events(rec.sequence, enc))
                mel = _onsets(melody.extract_events(only, enc))
            except melody.MelodyError:
                continue
            marked += 1
            recall.append(len(sky & mel) / max(len(mel), 1))
            precision.append(len(sky & mel) / max(len(sky), 1))
            same += sky == mel
    print(f"{read} tunes read from {len(paths)} files in {time.perf_counter() - t0:.0f} s; {marked} mark a melody part")
    if marked:
        print(f"marked melody notes the skyline keeps: median {np.median(recall):.3f}, mean {np.mean(recall):.3f}")
        print(f"skyline notes that are the marked melody's: median {np.median(precision):.3f}, "
              f"mean {np.mean(precision):.3f}")
        print(f"files whose skyline is exactly the marked melody: {same} of {marked} ({same / marked:.1%})")
    if a.json:
        import json

        with open(a.json, "w") as f:
            json.dump({"root": a.root or "music21 bach", "tunes": read, "marked": marked,
                       "kept_mean": float(np.mean(recall)) if marked else None,
                       "precision_mean": float(np.mean(precision)) if marked else None, "identical": same}, f, indent=1)


if __name__ == "__main__":
    main()
