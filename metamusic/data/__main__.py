"""`python -m metamusic.data catalog [--root DIR] [--json]`: the style table, splits and yield.

The first call ingests (with a progress bar) and caches; later calls load the cache.
`python -m metamusic.data ship-store` (maintainers): parse music21's bundled corpus here and
write what each file parsed to into the package (data/shipped/), so a fresh install skips
that parse when its music21 and note-seq versions are the ones recorded (data/parse_store.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from metamusic.data.dataset import load_corpus
from metamusic.data.melody import EncodingConfig
from metamusic.data.splits import SplitConfig
from metamusic.errors import MetamusicError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m metamusic.data", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("catalog", help="list styles, tune counts, splits and the per-source yield")
    c.add_argument("--root", default=None, help="user corpus: ROOT/<style>/<music files>; default: music21's bundled corpus")
    c.add_argument("--json", action="store_true", help="print JSON instead of tables")
    c.add_argument("--cache-dir", default=None, help="cache folder (default $METAMUSIC_CACHE_DIR or ~/.cache/metamusic)")
    c.add_argument("--rebuild", action="store_true", help="re-ingest even if a valid cache exists")
    c.add_argument("--workers", type=int, default=None, help="ingest processes (default: one per core)")
    c.add_argument("--min-tunes", type=int, default=SplitConfig.min_tunes, help="tunes a style needs to be used")
    c.add_argument("--split-seed", type=int, default=SplitConfig.seed)
    c.add_argument("--steps-per-quarter", type=int, default=EncodingConfig.steps_per_quarter)
    c.add_argument("--near-dup-threshold", type=float, default=SplitConfig.near_dup_threshold,
                   help="interval n-gram Jaccard at which two tunes are near-duplicates (0: off)")
    c.add_argument("--group-same-names", action="store_true",
                   help="styles of one name in two collections (oneills/jig, ryans/jig) share a split")
    c.add_argument("--key-normalize", action="store_true", help="transpose every tune to C major / A minor")
    c.add_argument("-v", "--verbose", action="store_true", help="log every skipped tune with its reason while ingesting")
    c.add_argument("--skipped", action="store_true",
                   help="list every skipped file and tune with its full reason (read from the cache; no re-ingest)")
    sh = sub.add_parser("ship-store", help="maintainers: write the bundled corpus's parse into the package")
    sh.add_argument("--out", default=None, help="default: metamusic/data/shipped/parsed-music21-bundled.npz")
    sh.add_argument("--workers", type=int, default=None)
    sh.add_argument("-v", "--verbose", action="store_true")
    return p


def ship_store(out=None, workers=None) -> str:
    """Parses the bundled corpus (every file, no store read) and writes its files' records to `out`."""
    from metamusic.data import corpus as corpus_lib, ingest, parse_store

    enc = EncodingConfig()
    settings = parse_store.store_settings(enc, "music21")
    user = parse_store.ParseStore(settings)
    sources = corpus_lib.bundled_sources()
    ingest.ingest(sources, enc, workers=workers, progress=True, stores=(user, []))
    out = out or parse_store.shipped_store_path()
    user.save(out)
    os.chmod(out, 0o644)  # package data: readable by everyone
    n = sum(len(s.files) for s in sources)
    print(f"{out}: {len(user.files)} distinct files of {n} ({os.path.getsize(out) / 1e6:.1f} MB), {settings}")
    return out


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if args.command == "ship-store":
        ship_store(args.out, args.workers)
        return 0
    try:
        t0 = time.perf_counter()
        corpus, note = _load(args)
        seconds = time.perf_counter() - t0
    except MetamusicError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if note:
        print(note, file=sys.stderr)
    rows = corpus.catalog()
    summary = {"styles": len(rows), "tunes": len(corpus), "events": int(sum(r["events"] for r in rows)),
               "styles_with_40_tunes": sum(r["tunes"] >= 40 for r in rows),
               "splits": {s: corpus.styles_in(s) for s in ("train", "val", "test")},
               "seconds": round(seconds, 2), "cache": corpus.cache_path}
    if args.json:
        out = {"summary": summary, "styles": rows, "report": corpus.report}
        if args.skipped:
            out["skipped"], out["near_duplicates_removed"] = corpus.skips, corpus.removed
            out["exact_duplicates_removed"] = corpus.copies
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    links = [(src, note) for src, notes in corpus.report.get("links", {}).items() for note in notes]
    if args.skipped:
        _print_skips(corpus.skips + corpus.copies + corpus.removed, links)
        return 0
    _print_tables(rows, summary, corpus.report)
    if corpus.skips or corpus.removed or corpus.report["dedup"]["removed"] or links:
        print(f"\n{len(corpus.skips)} files or tunes skipped, {corpus.report['dedup']['removed']} exact and "
              f"{len(corpus.removed)} near duplicates removed, {len(links)} links or folders not read; `--skipped` "
              "lists each with its reason")
    return 0


def _load(args):
    """(corpus, note): the corpus split for training; where fewer than 3 styles have --min-tunes tunes (no
    split possible), the folder read as an evaluation folder instead (every style of 2 tunes
    or more meta-test), so the catalog still shows every style, its tunes and the yield, with a note saying so."""
    def load(min_tunes, all_test=False):
        return load_corpus(args.root, cache_dir=args.cache_dir, rebuild=args.rebuild, workers=args.workers,
                           progress=True, all_test=all_test,
                           enc=EncodingConfig(steps_per_quarter=args.steps_per_quarter, key_normalize=args.key_normalize),
                           split=SplitConfig(seed=args.split_seed, min_tunes=min_tunes,
                                             near_dup_threshold=args.near_dup_threshold,
                                             group_same_names=args.group_same_names))
    try:
        corpus = load(args.min_tunes)
        if len(corpus.styles) >= 3:
            return corpus, ""
    except MetamusicError as e:
        if not str(e).startswith("need at least 3 styles"):
            raise
    corpus = load(2, all_test=True)
    n = sum(r["tunes"] >= args.min_tunes for r in corpus.catalog())
    return corpus, (f"note: {n} style(s) have --min-tunes={args.min_tunes} tunes or more, fewer than the 3 a "
                    "train/val/test split needs, so every style of 2 tunes or more is listed as meta-test: the folder "
                    "as `--config.eval.root` reads it (with --config.eval.min_tunes=2). To train on it, lower "
                    "`--config.data.min_tunes` (`--min-tunes` here) or add styles.")


def _print_skips(skips, links=()) -> None:
    """One line per skipped file or tune: source, path (X:index of a tunebook tune), title, full reason; then
    one per link or folder the walk did not read (a link to nothing, a loop, a hidden folder), as it said."""
    for s in skips:
        where = s["path"] + (f" X:{s['index']}" if s.get("index") is not None else "")
        title = f" ({s['title']})" if s.get("title") else ""
        print(f"{s['source']}\t{where}{title}\t{s['reason']}")
    for src, note in links:
        print(f"{src}\t{note}")
    print(f"{len(skips)} skipped or removed" + (f", {len(links)} links or folders not read" if links else ""),
          file=sys.stderr)


def _print_tables(rows, summary, report) -> None:
    w = max([32] + [len(r["style"]) for r in rows])  # a long style name widens its column, not a row
    print(f"{'style':{w}} {'split':5} {'tunes':>6} {'events':>9} {'median':>7}  meters (the 3 most common)")
    for r in rows:
        meters = ", ".join(f"{m}:{c}" for m, c in r["meters"].items())
        print(f"{r['style']:{w}} {r['split']:5} {r['tunes']:6d} {r['events']:9d} {r['median_length']:7.0f}  {meters}")
    print(f"\n{summary['styles']} styles, {summary['tunes']} tunes, {summary['events']} events "
          f"({summary['seconds']}s, " + (f"cache {summary['cache']})" if summary["cache"] else "not cached)"))
    for s in ("train", "val", "test"):
        print(f"meta-{s:5} ({len(summary['splits'][s])}): {', '.join(summary['splits'][s])}")
    d = report["dedup"]
    print(f"\nexact duplicates removed: {d['removed']} ({d['within_style']} within a style, "
          f"{d['across_styles']} across styles)")
    near = d.get("near")
    if near:
        across = ", ".join(f"{k} {v}" for k, v in near["across_splits"].items()) or "none"
        print(f"near-duplicates removed (interval n-gram Jaccard >= {near['threshold']}): {near['removed']} "
              f"({near['within_style']} within a style; across splits, the meta-test side kept: {across})")
    if report.get("styles_too_small"):
        print("styles left out (fewer tunes than min_tunes): "
              + ", ".join(f"{s}={n}" for s, n in report["styles_too_small"].items()))
    links = [f"{name}: {line}" for name, lines in report.get("links", {}).items() for line in lines]
    for line in links[:10]:
        print(line)
    if len(links) > 10:
        print(f"... {len(links) - 10} more links not followed or files read once (--json lists all)")
    zero = {n: r.get("zero_length_notes_dropped", 0) for n, r in report["sources"].items()}
    if any(zero.values()):
        print("zero-length MIDI notes dropped: " + ", ".join(f"{n}={z}" for n, z in zero.items() if z))
    w = max([14] + [len(n) for n in report["sources"]])
    print(f"\n{'source':{w}} {'files':>6} {'tunes':>6} {'melodies':>9} {'unlabeled':>9} {'skipped':>8} {'yield':>6}  top skip reasons")
    for name, r in report["sources"].items():
        reasons = "; ".join(f"{k} x{v}" for k, v in list(r["skip_reasons"].items())[:3])
        print(f"{name:{w}} {r['files']:6d} {r['tunes_found']:6d} {r['melodies']:9d} {r['unlabeled']:9d} "
              f"{r['skipped']:8d} {100 * r['yield']:5.1f}%  {reasons}")


if __name__ == "__main__":
    sys.exit(main())
