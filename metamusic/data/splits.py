"""De-duplication, style-disjoint meta splits, and per-style support/query tune pools."""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from metamusic.data import near_dups
from metamusic.data.corpus import collection_of
from metamusic.errors import MetamusicError

SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """How styles and tunes are split. Part of the cache key."""

    seed: int = 0  # seeds the style split and the tune pools
    val_fraction: float = 0.15  # share of styles in meta-val
    test_fraction: float = 0.2  # share of styles in meta-test
    min_test_collections: int = 3  # meta-test draws styles from at least this many collections
    min_tunes: int = 40  # a style needs this many tunes (after de-duplication) to be used
    query_fraction: float = 0.5  # share of each style's tunes in its query pool
    # near_dups.py: tunes whose rare interval-n-gram Jaccard is at least this are near-duplicates (within a
    # style one is kept; across splits the meta-test copy is kept); 0 turns it off
    near_dup_threshold: float = near_dups.NearDupConfig.threshold
    # styles with the same name after the collection ('oneills/jig', 'ryans/jig') share a split: each such
    # group joins the split of its member drawn furthest from training (test > val > train)
    group_same_names: bool = False

    def __post_init__(self):
        for name in ("val_fraction", "test_fraction", "query_fraction"):
            v = getattr(self, name)
            if not 0.0 < v < 1.0:
                raise MetamusicError(f"{name}={v} must be in (0, 1)")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise MetamusicError("val_fraction + test_fraction must be < 1 so meta-train keeps styles")
        if not 0.0 <= self.near_dup_threshold <= 1.0:
            raise MetamusicError(f"data.near_dup_threshold={self.near_dup_threshold} must be in [0, 1] (0: off)")
        if self.min_tunes < 2:
            raise MetamusicError(f"data.min_tunes={self.min_tunes} must be >= 2 (a support and a query tune)")


def deduplicate(melodies, copies: list | None = None):
    """Keeps the first copy of each content hash (corpus order: source, file, tune).

    One copy in the whole corpus means no hash can sit in two splits, or in both
    the support and the query pool of a style.
    Args:
      copies: when given, receives (removed melody, the kept melody it repeats) for every copy removed.
    Returns:
      (kept melodies, stats dict with removed counts: total, within_style, across_styles, by_source).
    """
    first: dict = {}
    kept, within, across = [], 0, 0
    by_source = collections.Counter()
    for m in melodies:
        seen = first.get(m.hash)
        if seen is None:
            first[m.hash] = m
            kept.append(m)
            continue
        by_source[m.source] += 1
        if copies is not None:
            copies.append((m, seen))
        if seen.style == m.style:
            within += 1
        else:
            across += 1
    return kept, {"removed": within + across, "within_style": within, "across_styles": across,
                  "by_source": dict(by_source)}


def assign_styles(styles: list[str], cfg: SplitConfig) -> dict[str, str]:
    """Style -> 'train' | 'val' | 'test', seeded and style-disjoint.

    Meta-test first takes one style from each of `min_test_collections` randomly
    chosen collections (so it spans several sources), then fills up with styles
    drawn uniformly; meta-val is drawn uniformly from the rest; all else trains.
    """
    styles = sorted(styles)
    n = len(styles)
    if n < 3:
        raise MetamusicError(f"need at least 3 styles for train/val/test splits, found {n}; "
                             f"lower data.min_tunes (now {cfg.min_tunes}) or add styles")
    rng = np.random.default_rng(cfg.seed)
    n_test = max(1, int(round(cfg.test_fraction * n)))
    n_val = max(1, int(round(cfg.val_fraction * n)))
    if n_test + n_val >= n:
        n_test, n_val = 1, 1
    by_coll = collections.defaultdict(list)
    for s in styles:
        by_coll[collection_of(s)].append(s)
    colls = sorted(by_coll)
    test: list[str] = []
    for c in rng.permutation(colls)[: min(cfg.min_test_collections, len(colls), n_test)]:
        test.append(str(rng.choice(by_coll[str(c)])))
    rest = [s for s in styles if s not in test]
    rest = [rest[i] for i in rng.permutation(len(rest))]
    fill = max(0, n_test - len(test))
    test += rest[:fill]
    val = rest[fill: fill + n_val]
    out = {s: "train" for s in styles}
    out.update({s: "val" for s in val})
    out.update({s: "test" for s in test})
    if cfg.group_same_names:
        rank = {"train": 0, "val": 1, "test": 2}
        groups = collections.defaultdict(list)
        for s in styles:
            if "/" in s:
                groups[s.split("/", 1)[1]].append(s)
        for members in groups.values():
            top = max((out[m] for m in members), key=rank.get)
            out.update({m: top for m in members})
    return out


def tune_pools(style_ids: np.ndarray, cfg: SplitConfig) -> np.ndarray:
    """Per tune: 0 = support pool, 1 = query pool; seeded, `query_fraction` per style.

    Evaluation draws support tunes from pool 0 and query tunes from pool 1, so
    the tunes a model adapts on are never the ones it is scored on.
    """
    rng = np.random.default_rng([cfg.seed, 1])
    pool = np.zeros(len(style_ids), np.int8)
    for s in np.unique(style_ids):
        idx = np.flatnonzero(style_ids == s)
        idx = idx[rng.permutation(len(idx))]
        n_query = max(1, min(len(idx) - 1, int(round(cfg.query_fraction * len(idx)))))
        pool[idx[:n_query]] = 1
    return pool
