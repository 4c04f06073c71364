"""Near-duplicate tunes: the same melody edited, re-octaved, re-barred or copied into another collection.

The exact content hash (melody.content_hash) misses a melody whose octave folding
into the pitch range changed an interval, one changed note, an added pickup, or
`|: ... :|` repeats written out. Here a tune is the *set* of its n-grams of pitch
intervals modulo 12:
  - intervals: transposition-invariant; modulo 12: a note moved by an octave
    (folding, an octave-displaced phrase) changes no symbol;
  - a set: a repeat written out adds no n-gram; a pickup or one edited note changes
    at most n of them (2n for an edit inside the tune).
Two tunes are near-duplicates when the Jaccard similarity of their sets, counted
over n-grams that are rare in the corpus (in at most `max_df` of tunes, or `min_df`
tunes in a small corpus: common runs like a scale say nothing about identity, while
the few copies of one melody must still count), is at least `threshold`.

Pairs are found exactly with an inverted index (every pair sharing a rare n-gram
is counted once per shared n-gram), in numpy; no sampling, so the result is
deterministic and the same on every machine.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class NearDupConfig:
    n: int = 5  # n-gram length in intervals (n + 1 notes)
    threshold: float = 0.4  # Jaccard over rare n-grams at or above which two tunes are near-duplicates
    max_df: float = 0.01  # an n-gram in more than this share of tunes is too common to count...
    # ...unless it is in at most this many: a melody and a few copies of it share their n-grams, which a
    # share alone would call common in a corpus of a few hundred tunes or fewer
    min_df: int = 5
    min_grams: int = 8  # tunes with fewer rare n-grams are not compared (too short to judge)


def interval_ngrams(tokens: np.ndarray, num_classes: int, n: int) -> np.ndarray:
    """Sorted unique ids of the n-grams of note-to-note intervals mod 12 of one tune's tokens."""
    t = np.asarray(tokens).astype(np.int64)
    onsets = t[(t >= 2) & (t < num_classes)]  # 0 no-event, 1 note-off, >= num_classes pad/BOS
    iv = np.diff(onsets) % 12
    if len(iv) < n:
        return np.zeros(0, np.int64)
    grams = np.lib.stride_tricks.sliding_window_view(iv, n)
    return np.unique(grams @ (12 ** np.arange(n, dtype=np.int64)))


def similar_pairs(gram_sets: list, cfg: NearDupConfig = NearDupConfig()) -> list[tuple[int, int, float]]:
    """(i, j, jaccard) for every i < j whose rare-n-gram Jaccard is >= cfg.threshold."""
    n_tunes = len(gram_sets)
    if n_tunes < 2:
        return []
    ids = np.concatenate(gram_sets) if gram_sets else np.zeros(0, np.int64)
    owner = np.repeat(np.arange(n_tunes), [len(g) for g in gram_sets])
    _, inv, df = np.unique(ids, return_inverse=True, return_counts=True)
    counted = df <= max(cfg.min_df, int(cfg.max_df * n_tunes))  # rare enough to say something about identity
    size = np.bincount(owner, weights=counted[inv], minlength=n_tunes)  # each tune's rare n-grams
    keep = (counted & (df >= 2))[inv]  # rare and shared: the only n-grams that can pair two tunes
    gram, who = inv[keep], owner[keep]
    order = np.lexsort((who, gram))
    gram, who = gram[order], who[order]
    starts = np.flatnonzero(np.r_[True, gram[1:] != gram[:-1]])
    ends = np.r_[starts[1:], len(gram)]
    keys = []
    for s, e in zip(starts, ends):  # every pair of tunes sharing this rare n-gram
        members = who[s:e]
        a, b = np.triu_indices(len(members), 1)
        keys.append(members[a] * n_tunes + members[b])
    if not keys:
        return []
    pair, shared = np.unique(np.concatenate(keys), return_counts=True)
    i, j = pair // n_tunes, pair % n_tunes
    union = size[i] + size[j] - shared
    jac = shared / np.maximum(union, 1)
    ok = (jac >= cfg.threshold) & (size[i] >= cfg.min_grams) & (size[j] >= cfg.min_grams)
    return [(int(a), int(b), float(c)) for a, b, c in zip(i[ok], j[ok], jac[ok])]


_SPLIT_RANK = {"train": 0, "val": 1, "test": 2}


def within_styles(melodies, pairs) -> tuple[np.ndarray, dict]:
    """Keep mask after dropping, within each style, every tune similar to an earlier kept tune of that
    style (corpus order), so no tune's variant sits in the other support/query pool.
    Returns (keep, {dropped tune: (the kept tune it copies, Jaccard)})."""
    keep = np.ones(len(melodies), bool)
    earlier = {}
    for i, j, sim in pairs:
        if melodies[i].style == melodies[j].style:
            earlier.setdefault(j, []).append((i, sim))
    cause = {}
    for j in sorted(earlier):
        kept = [(i, sim) for i, sim in earlier[j] if keep[i]]
        if kept:
            keep[j] = False
            cause[j] = max(kept, key=lambda t: t[1])
    return keep, cause


def across_splits(melodies, pairs, keep: np.ndarray, split_of: dict) -> tuple[np.ndarray, dict, dict]:
    """Keep mask after dropping, from every near-duplicate pair of kept tunes in two different splits,
    the tune on the training side (train < val < test): meta-test stays whole and no meta-test tune has
    a near-copy in meta-train or meta-val.
    Returns (keep, counts like {'train~test': n}, {dropped tune: (the tune it copies, Jaccard)})."""
    keep = keep.copy()
    counts: dict = {}
    cause = {}
    for i, j, sim in pairs:
        if not (keep[i] and keep[j]):
            continue
        si, sj = split_of.get(melodies[i].style), split_of.get(melodies[j].style)
        if si is None or sj is None or si == sj:
            continue
        lo, hi = (i, j) if _SPLIT_RANK[si] < _SPLIT_RANK[sj] else (j, i)
        keep[lo] = False
        cause[lo] = (hi, sim)
        key = "~".join(sorted((si, sj), key=_SPLIT_RANK.get))
        counts[key] = counts.get(key, 0) + 1
    return keep, counts, cause
