"""The encoded corpus: build it once (ingest, label, de-duplicate, split), cache it, load it fast.

`load_corpus()` is the one entry point the rest of the project uses:

    corpus = load_corpus()                      # music21's bundled corpus
    corpus = load_corpus(root="my_tunes/")      # ROOT/<style>/<files>
    corpus.styles_in("test"), corpus.tune(i), corpus.catalog()
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import time
from typing import Optional

import numpy as np

from metamusic.data import cache, corpus as corpus_lib, formats, ingest, melody, near_dups, parse_store, splits
from metamusic.data.melody import EncodingConfig
from metamusic.errors import MetamusicError, check_choice, near_hint

log = logging.getLogger("metamusic.data")


@dataclasses.dataclass
class Corpus:
    """All usable tunes, flat. Tune i is tokens[offsets[i]:offsets[i+1]] (BOS first)."""

    tokens: np.ndarray  # int8 [total tokens]
    offsets: np.ndarray  # int64 [n_tunes + 1]
    style_of: np.ndarray  # int32 [n_tunes], index into `styles`
    pool: np.ndarray  # int8 [n_tunes], 0 support pool, 1 query pool
    styles: list  # style names, sorted
    split_of: dict  # style -> 'train' | 'val' | 'test'
    meta: list  # per tune: title, path, index, origin, rhythm, meter, key, source, hash
    report: dict  # yield per source, de-duplication, dropped styles, timings
    enc: EncodingConfig
    split_cfg: splits.SplitConfig
    cache_path: str = ""
    positions: Optional[np.ndarray] = None  # int8 [total tokens]: bar position of each token (melody.NO_POS on BOS)
    skips: list = dataclasses.field(default_factory=list)  # every skipped file or tune: source, path, index, reason, title
    removed: list = dataclasses.field(default_factory=list)  # near-duplicates removed, the same fields
    # exact duplicates removed (the same melody, `splits.deduplicate`), the same fields; empty in a cache written
    # before they were listed
    copies: list = dataclasses.field(default_factory=list)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.style_of)

    def tune(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i]: self.offsets[i + 1]]

    def tune_positions(self, i: int) -> np.ndarray:
        """The bar-position channel of tune i, aligned with `tune(i)`."""
        return self.positions[self.offsets[i]: self.offsets[i + 1]]

    def styles_in(self, split: str) -> list:
        check_choice("split", split, splits.SPLITS + ("all",))
        return [s for s in self.styles if split == "all" or self.split_of[s] == split]

    def style_index(self, name: str) -> int:
        try:
            return self.styles.index(name)
        except ValueError:
            raise MetamusicError(f"unknown style {name!r}; run `python -m metamusic.data catalog` to list them "
                                 f"(e.g. {self.styles[:3]}){near_hint(name, self.styles)}") from None

    def catalog(self) -> list[dict]:
        """One row per style: style, collection, split, tunes, events, median length, meters."""
        rows = []
        lengths = self.lengths - 1  # events, without BOS
        for k, name in enumerate(self.styles):
            idx = np.flatnonzero(self.style_of == k)
            meters = {}
            for i in idx:
                m = self.meta[i].get("meter") or "?"
                meters[m] = meters.get(m, 0) + 1
            top = sorted(meters.items(), key=lambda kv: -kv[1])[:3]
            rows.append({"style": name, "collection": corpus_lib.collection_of(name),
                         "split": self.split_of[name], "tunes": int(len(idx)),
                         "events": int(lengths[idx].sum()), "median_length": float(np.median(lengths[idx])),
                         "meters": {m: c for m, c in top}})
        return rows


def load_corpus(root: Optional[str] = None, *, enc: EncodingConfig = EncodingConfig(),
                split: splits.SplitConfig = splits.SplitConfig(), cache_dir: Optional[str] = None,
                abc_backend: str = "music21", midi_backend: str = "symusic", workers: Optional[int] = None,
                progress: bool = True, rebuild: bool = False, all_test: bool = False) -> Corpus:
    """Loads the encoded corpus from cache, or builds (and caches) it.

    Args:
      root: a user corpus folder (ROOT/<style>/<files>); None for music21's bundled corpus.
      enc, split: encoding and split settings (both part of the cache key).
      cache_dir: where caches live; default `cache.default_cache_dir()`.
      midi_backend: the MIDI reader, "symusic" or "note_seq" (formats.MIDI_BACKENDS; the same tokens).
      workers: ingest processes (default one per core).
      rebuild: ignore an existing cache.
      all_test: every style is meta-test (a collection to evaluate a trained run on, any number of
        styles); `split` then only sets min_tunes and the support/query pools.
    """
    check_choice("midi_backend", midi_backend, formats.MIDI_BACKENDS)
    root = os.path.expanduser(root) if root else root
    sources = corpus_lib.folder_sources(root) if root else corpus_lib.bundled_sources()
    paths = [f for s in sources for f in s.files]
    if not paths:
        raise MetamusicError(f"no music files found under {root!r}; supported: .mid .midi .xml .mxl .musicxml .abc .krn")
    settings = {"root": os.path.realpath(root) if root else "music21-bundled", "abc_backend": abc_backend,
                "midi_backend": midi_backend, "enc": melody.settings(enc), "split": dataclasses.asdict(split)}
    if all_test:
        settings["all_test"] = True  # (absent otherwise, so existing cache keys do not change)
    cache_dir = cache_dir or cache.default_cache_dir()
    path = os.path.join(cache_dir, f"corpus-{cache.settings_key(settings)}.npz")
    if not rebuild:
        t0 = time.perf_counter()
        loaded = cache.load(path)
        if loaded is not None:
            arrays, manifest, payload = loaded
            why = cache.stale_reason(manifest, settings, paths)
            if why is None:
                c = _from_cache(arrays, payload, enc, split, path)
                c.report["load_seconds"] = round(time.perf_counter() - t0, 3)
                return c
            log.warning("rebuilding the corpus cache: %s", why)
    return _build(sources, paths, settings, path, enc, split, abc_backend, workers, progress, all_test,
                  cache_dir=cache_dir, use_stores=not rebuild, bundled=not root, midi_backend=midi_backend)


def _build(sources, paths, settings, path, enc, split, abc_backend, workers, progress, all_test=False, *,
           cache_dir: str, use_stores: bool = True, bundled: bool = False, midi_backend: str = "symusic") -> Corpus:
    t0 = time.perf_counter()
    # What each file parsed to before (this machine's store, and the shipped one for the bundled corpus):
    # only new or changed files are parsed. rebuild parses everything again (and refreshes the store).
    store_settings = parse_store.store_settings(enc, abc_backend)
    user_store, read = parse_store.open_stores(cache_dir, store_settings, bundled)
    fingerprint = cache.fingerprint(paths)  # for the manifest, and the parse stores' lookup (one hash per file)
    melodies, skips, yield_report, parsed = ingest.ingest(sources, enc, abc_backend=abc_backend,
                                                          midi_backend=midi_backend, workers=workers,
                                                          progress=progress,
                                                          stores=(user_store, read if use_stores else []),
                                                          sha1s={f[0]: f[3] for f in fingerprint})
    cache_error = None
    if parsed["files_parsed"]:
        try:
            user_store.save(parse_store.user_store_path(cache_dir, store_settings))
        except OSError as e:  # a read-only or full cache folder costs the next ingest time, not this one
            cache_error = e
    ingest_seconds = time.perf_counter() - t0
    labeled = [m for m in melodies if m.style is not None]
    pairs = []
    kept, dedup = splits.deduplicate(labeled, copies=pairs)
    copies = _exact_copies(pairs)
    kept, split_of, too_small, dedup["near"], removed = _near_dups_and_split(kept, split, enc, all_test)
    styles = sorted(split_of)
    if all_test and not kept:
        raise MetamusicError(f"{settings['root']}: {nothing_read(skips)}")
    if all_test and not styles:
        raise MetamusicError(f"no style in {settings['root']} has {split.min_tunes} usable tunes "
                             f"(counts: {too_small}); lower the min_tunes setting")
    sid = {s: i for i, s in enumerate(styles)}
    style_of = np.array([sid[m.style] for m in kept], np.int32)
    lengths = np.array([len(m.tokens) for m in kept], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = np.concatenate([m.tokens for m in kept]) if kept else np.zeros(0, np.int8)
    positions = np.concatenate([m.pos for m in kept]) if kept else np.zeros(0, np.int8)
    pool = splits.tune_pools(style_of, split)
    meta = [{**m.meta, "source": m.source, "hash": m.hash} for m in kept]
    report = {"sources": yield_report, "dedup": dedup, "styles_too_small": too_small,
              "links": {s.name: list(s.notes) for s in sources if s.notes},
              "tunes": len(kept), "styles": len(styles), "skipped": len(skips),
              "ingest_seconds": round(ingest_seconds, 1), **parsed}
    manifest = {"version": cache.CACHE_VERSION, "settings": settings, "libraries": cache.library_versions(),
                "files": fingerprint, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    payload = {"styles": styles, "split_of": split_of, "meta": meta, "report": report, "skips": skips,
               "removed": removed, "copies": copies}
    if cache_error is None:
        try:
            cache.save(path, {"tokens": tokens, "offsets": offsets, "style_of": style_of, "pool": pool,
                              "positions": positions}, manifest, payload)
            log.info("cached %d tunes in %d styles at %s (ingest %.0fs)", len(kept), len(styles), path, ingest_seconds)
        except OSError as e:  # a read-only or full cache folder costs the next run an ingest, not this result
            cache_error = e
    if cache_error is not None:  # one warning for the parse store and the corpus cache together
        why = ("it is a file, not a folder" if os.path.isfile(cache_dir) else cache_error.strerror or cache_error)
        log.warning("could not write the cache in %s (%s); continuing without it (set METAMUSIC_CACHE_DIR or "
                    "data.cache_dir to a writable folder to cache the ingest)", cache_dir, why)
    return Corpus(tokens, offsets, style_of, pool, styles, split_of, meta, report, enc, split,
                  path if cache_error is None else "", positions, skips, removed, copies)


def nothing_read(skips: list) -> str:
    """What to tell a user whose folder gave no usable tune at all (lowering min_tunes cannot help)."""
    kinds = collections.Counter(ingest._reason_kind(s["reason"]) for s in skips)
    top = ", ".join(f"{k} x{n}" for k, n in kinds.most_common(3))
    return (f"no usable tunes: {len(skips)} files or tunes skipped" + (f" ({top})" if top else "")
            + "; `python -m metamusic.data catalog --root DIR --skipped` lists each with its reason")


def _where(meta: dict) -> str:
    """A tune's file, and its X: number where it is a tunebook's."""
    return meta.get("path", "") + (f" X:{meta['index']}" if meta.get("index") is not None else "")


def _exact_copies(pairs) -> list:
    """Records of the tunes `splits.deduplicate` removed ((copy, the kept tune it repeats) pairs), in the fields of
    the near-duplicates' records, so `catalog --skipped` can name every tune removed."""
    return [{"source": m.source, "style": m.style, "partner_style": o.style, "path": m.meta.get("path", ""),
             "index": m.meta.get("index"), "title": m.meta.get("title", ""),
             "reason": f"exact duplicate (the same melody) of {_where(o.meta)} in {o.style}"} for m, o in pairs]


def _near_dups_and_split(kept, split: splits.SplitConfig, enc: EncodingConfig, all_test: bool):
    """Near-duplicates within styles out, styles under min_tunes out, styles to splits, then near-duplicates
    across splits out (the training-side copy) and styles that fell under min_tunes out.

    Returns (melodies, split_of, too_small, near-duplicate counts, removed tunes with their reasons).
    """
    cfg = near_dups.NearDupConfig(threshold=split.near_dup_threshold)
    pairs = []
    if split.near_dup_threshold > 0 and kept:
        sets = [near_dups.interval_ngrams(m.tokens, enc.num_classes, cfg.n) for m in kept]
        pairs = near_dups.similar_pairs(sets, cfg)
    keep, copies = near_dups.within_styles(kept, pairs)
    counts = collections.Counter(m.style for m, k in zip(kept, keep) if k)
    too_small = {s: n for s, n in sorted(counts.items()) if n < split.min_tunes}
    styles = sorted(set(counts) - set(too_small))
    split_of = {st: "test" for st in styles} if all_test else (splits.assign_styles(styles, split) if styles else {})
    keep2, across, cross_copies = near_dups.across_splits(kept, pairs, keep, split_of)
    counts2 = collections.Counter(m.style for m, k in zip(kept, keep2) if k and m.style in split_of)
    fell = {s: counts2[s] for s in styles if counts2[s] < split.min_tunes}
    for s in fell:  # its split stays as drawn; the style is just not used
        del split_of[s]
    too_small.update(fell)
    removed = []
    for i, m in enumerate(kept):
        if keep[i] and keep2[i]:
            continue
        o, sim = copies[i] if i in copies else cross_copies[i]  # the kept tune that made it go
        where = "the same style" if i in copies else f"{kept[o].style} ({split_of.get(kept[o].style, '-')})"
        removed.append({"source": m.source, "style": m.style, "partner_style": kept[o].style,
                        "path": m.meta.get("path", ""), "index": m.meta.get("index"),
                        "title": m.meta.get("title", ""), "reason": f"near-duplicate (Jaccard {sim:.2f}) of "
                        f"{_where(kept[o].meta)} in {where}"})
    final = [m for m, k in zip(kept, keep2) if k and m.style in split_of]
    report = {"threshold": split.near_dup_threshold, "pairs": len(pairs), "within_style": len(copies),
              "across_splits": across, "removed": len(copies) + sum(across.values()),
              "styles_fell_under_min_tunes": fell}
    return final, split_of, too_small, report, removed


def _from_cache(arrays, payload, enc, split, path) -> Corpus:
    return Corpus(arrays["tokens"], arrays["offsets"], arrays["style_of"], arrays["pool"], payload["styles"],
                  payload["split_of"], payload["meta"], payload["report"], enc, split, path, arrays["positions"],
                  payload.get("skips", []), payload.get("removed", []), payload.get("copies", []))


def near_copies(c: Corpus, other: Corpus, threshold: float) -> np.ndarray:
    """Per tune of `c`: whether a tune of `other` is its near-duplicate (near_dups.py), e.g. a held-out
    collection's copy of a tune the model trained on."""
    if threshold <= 0 or not len(c) or not len(other):
        return np.zeros(len(c), bool)
    cfg = near_dups.NearDupConfig(threshold=threshold)
    sets = ([near_dups.interval_ngrams(c.tune(i), c.enc.num_classes, cfg.n) for i in range(len(c))]
            + [near_dups.interval_ngrams(other.tune(i), other.enc.num_classes, cfg.n) for i in range(len(other))])
    hit = np.zeros(len(c), bool)
    for i, j, _ in near_dups.similar_pairs(sets, cfg):
        if i < len(c) <= j:
            hit[i] = True
    return hit


def without_tunes(c: Corpus, hashes, min_tunes: int, near_copies_of: Optional[Corpus] = None,
                  near_dup_threshold: float = 0.0) -> tuple[Corpus, dict]:
    """`c` less every tune whose content hash is in `hashes` (e.g. tunes a model was trained on) and,
    given `near_copies_of`, every near-duplicate of one of its tunes; then less the styles left with
    fewer than `min_tunes` tunes. Returns (corpus, what was dropped)."""
    hashes = set(hashes)
    dup = np.array([m["hash"] in hashes for m in c.meta], bool)
    near = (near_copies(c, near_copies_of, near_dup_threshold) & ~dup if near_copies_of is not None
            else np.zeros(len(c), bool))
    keep = ~dup & ~near
    counts = np.bincount(c.style_of[keep], minlength=len(c.styles))
    small = {c.styles[k]: int(n) for k, n in enumerate(counts) if n < min_tunes}
    keep &= ~np.isin(c.style_of, [c.styles.index(s) for s in small])
    styles = [s for s in c.styles if s not in small]
    new_id = np.full(len(c.styles), -1, np.int32)
    new_id[[c.styles.index(s) for s in styles]] = np.arange(len(styles), dtype=np.int32)
    idx = np.flatnonzero(keep)
    lengths = np.diff(c.offsets)[idx]
    tokens = np.concatenate([c.tune(i) for i in idx]) if idx.size else np.zeros(0, c.tokens.dtype)
    positions = np.concatenate([c.tune_positions(i) for i in idx]) if idx.size else np.zeros(0, np.int8)
    dropped = {"duplicates": int(dup.sum()), "near_duplicates": int(near.sum()), "tunes": int((~keep).sum()),
               "styles": small}
    out = dataclasses.replace(c, tokens=tokens, positions=positions, offsets=np.concatenate([[0], np.cumsum(lengths)]),
                              style_of=new_id[c.style_of[idx]], pool=c.pool[idx], styles=styles,
                              split_of={s: c.split_of[s] for s in styles}, meta=[c.meta[i] for i in idx],
                              report={**c.report, "dropped": dropped})
    return out, dropped


def dropped_summary(dropped: dict) -> str:
    """How many tunes `without_tunes` dropped as seen in training, exact and near copies counted apart, and the
    styles left out under eval.min_tunes (`dropped["styles"]`, with their tune counts): a user whose style vanished
    sees that its files were copies of training tunes (e.g. the same chorales exported to MIDI, which the content
    hash misses and the near-duplicate check finds), or too few."""
    exact, near = int(dropped.get("duplicates", 0)), int(dropped.get("near_duplicates", 0))
    small = dropped.get("styles", {})
    return (f"dropped {exact + near} tunes seen in training ({exact} exact copies, {near} near copies); styles "
            "under eval.min_tunes: " + (", ".join(f"{s} ({n} tunes)" for s, n in small.items()) or "none"))
