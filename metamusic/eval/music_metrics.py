"""Music metrics for generated melodies: MGEval-style set comparison and validity checks.

MGEval (Yang & Lerch 2018) compares a generated set with a reference set feature by
feature: per feature, the distribution of distances between pieces *within* the
reference set (intra-set) is compared with the distribution of distances *between*
generated and reference pieces (inter-set). If the generated pieces were drawn from
the reference style, the two distributions coincide: overlap area (OA) 1, KL 0.
Distributions are Gaussian kernel density estimates (Silverman bandwidth) on a grid.

Validity metrics (MuseGAN-style, per set): empty-bar rate, pitch classes used,
in-scale ratio (share of notes in the best-fitting major scale; its relative minor
has the same notes), and the share of notes at least two steps long.

Plain numpy on melody tokens (no JAX): token 0 holds, 1 is note-off, 2.. are
pitches from `min_note` (see metamusic.data.melody).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

FEATURES = ("pitch_class_histogram", "pitch_range", "average_interval", "note_length_histogram",
            "inter_onset_interval", "pitch_class_transition_matrix")
# note lengths in steps at 4 steps per quarter: 16th, 8th, dotted 8th, quarter, dotted quarter, half,
# dotted half, whole; a length goes to the nearest class on a log scale
LENGTH_CLASSES = np.array([1, 2, 3, 4, 6, 8, 12, 16], np.float64)
MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])


class Note(NamedTuple):
    pitch: int
    start: int  # step
    end: int  # step (exclusive)


def notes(tokens, min_note: int = 48, num_classes: int = 38) -> list[Note]:
    """The notes of one token sequence. Tokens >= num_classes (PAD, BOS) count as silence."""
    out, cur = [], None
    tokens = np.asarray(tokens)
    for t, tok in enumerate(tokens):
        tok = int(tok)
        if tok == 0 and cur is not None:
            continue
        if cur is not None:
            out.append(Note(cur[0], cur[1], t))
            cur = None
        if 2 <= tok < num_classes:
            cur = (tok - 2 + min_note, t)
    if cur is not None:
        out.append(Note(cur[0], cur[1], len(tokens)))
    return out


def _length_class(d: int) -> int:
    return int(np.argmin(np.abs(np.log(LENGTH_CLASSES) - np.log(max(d, 1)))))


def features(ns: list[Note], steps_per_quarter: int = 4) -> dict:
    """MGEval features of one melody's notes. Lengths are rescaled to 4 steps per quarter."""
    scale = 4.0 / steps_per_quarter
    p = np.array([n.pitch for n in ns])
    pcs = p % 12
    pch = np.bincount(pcs, minlength=12).astype(np.float64) if len(ns) else np.zeros(12)
    lens = [_length_class(round((n.end - n.start) * scale)) for n in ns]
    nlh = np.bincount(np.array(lens, int), minlength=len(LENGTH_CLASSES)).astype(np.float64) if ns else \
        np.zeros(len(LENGTH_CLASSES))
    trans = np.zeros((12, 12))
    if len(ns) > 1:
        np.add.at(trans, (pcs[:-1], pcs[1:]), 1.0)
    onsets = np.array([n.start for n in ns], np.float64) * scale
    return {
        "pitch_class_histogram": pch / max(pch.sum(), 1.0),
        "pitch_range": np.array([float(p.max() - p.min()) if len(p) else 0.0]),
        "average_interval": np.array([float(np.abs(np.diff(p)).mean()) if len(p) > 1 else 0.0]),
        "note_length_histogram": nlh / max(nlh.sum(), 1.0),
        "inter_onset_interval": np.array([float(np.diff(onsets).mean()) if len(ns) > 1 else 0.0]),
        "pitch_class_transition_matrix": (trans / max(trans.sum(), 1.0)).ravel(),
    }


def set_features(melodies: list[list[Note]], steps_per_quarter: int = 4) -> dict:
    """feature name -> [n, dim] array over a set of melodies."""
    per = [features(m, steps_per_quarter) for m in melodies]
    return {f: np.stack([x[f] for x in per]) for f in FEATURES}


def _pairwise(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distances: within `a` (each unordered pair once), or every a-b pair."""
    if b is None:
        d = np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1))
        return d[np.triu_indices(len(a), 1)]
    return np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1)).ravel()


def _kde(samples: np.ndarray, grid: np.ndarray) -> np.ndarray:
    n = len(samples)
    std = samples.std()
    span = grid[-1] - grid[0]
    bw = 1.06 * std * n ** (-0.2) if std > 0 else 0.0
    bw = max(bw, 1e-3 * span, 1e-6)
    dens = np.exp(-0.5 * ((grid[:, None] - samples[None]) / bw) ** 2).sum(1)
    dx = grid[1] - grid[0]
    return dens / max(dens.sum() * dx, 1e-300)


def overlap_and_kl(intra: np.ndarray, inter: np.ndarray, points: int = 1000) -> tuple[float, float]:
    """Overlap area of two distance distributions and KL(intra || inter), both from KDEs on one grid."""
    lo, hi = min(intra.min(), inter.min()), max(intra.max(), inter.max())
    pad = 0.1 * (hi - lo) + 1e-3
    grid = np.linspace(lo - pad, hi + pad, points)
    dx = grid[1] - grid[0]
    p, q = _kde(intra, grid), _kde(inter, grid)
    oa = float(np.minimum(p, q).sum() * dx)
    eps = 1e-10
    kl = float((p * np.log((p + eps) / (q + eps))).sum() * dx)
    return oa, max(kl, 0.0)


def mgeval(generated: dict, reference: dict) -> dict:
    """feature -> {"overlap", "kl"} comparing a generated set with a reference set (set_features outputs)."""
    out = {}
    for f in FEATURES:
        intra = _pairwise(reference[f])
        inter = _pairwise(generated[f], reference[f])
        oa, kl = overlap_and_kl(intra, inter)
        out[f] = {"overlap": oa, "kl": kl}
    return out


def in_scale_ratio(ns: list[Note]) -> float:
    """Share of notes in the best-fitting major scale (over the 12 keys); 1.0 for a melody with no notes."""
    if not ns:
        return 1.0
    pcs = np.array([n.pitch % 12 for n in ns])
    return float(max(np.isin(pcs, (MAJOR + k) % 12).mean() for k in range(12)))


def validity(melodies: list[list[Note]], lengths: list[int], steps_per_bar: int = 16) -> dict:
    """Set means of: empty-bar rate, pitch classes used, in-scale ratio, share of notes >= 2 steps.

    `lengths` are the melodies' lengths in steps; a bar is empty when no note sounds in it
    (partial last bars count by their steps).
    """
    empty, pcs, scale, long_ = [], [], [], []
    for ns, L in zip(melodies, lengths):
        sounding = np.zeros(L, bool)
        for n in ns:
            sounding[n.start:n.end] = True
        bars = [sounding[a:a + steps_per_bar] for a in range(0, L, steps_per_bar)]
        empty.append(np.mean([not b.any() for b in bars]) if bars else 0.0)
        pcs.append(len({n.pitch % 12 for n in ns}))
        scale.append(in_scale_ratio(ns))
        if ns:
            long_.append(np.mean([(n.end - n.start) >= 2 for n in ns]))
    return {"empty_bar_rate": float(np.mean(empty)), "pitch_classes_used": float(np.mean(pcs)),
            "in_scale_ratio": float(np.mean(scale)),
            "notes_2_steps_or_longer": float(np.mean(long_)) if long_ else 0.0}
