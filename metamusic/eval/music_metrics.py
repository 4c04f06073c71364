"""Music metrics for generated melodies: MGEval-style set comparison and validity checks.

MGEval (Yang & Lerch 2018) compares a generated set with a reference set feature by
feature: per feature, the distribution of distances between pieces *within* the
reference set (intra-set) is compared with the distribution of distances *between*
generated and reference pieces (inter-set). If the generated pieces were drawn from
the reference style, the two distributions coincide: overlap area (OA) 1, KL 0.
Distributions are Gaussian kernel density estimates (Silverman bandwidth) on a grid.

Validity metrics (MuseGAN-style, per set): empty-bar rate over the whole window
(trailing silence counts), the share of notes at least two steps long, and from MusPy
(Dong et al. 2020; we call the library rather than write them again): pitch classes
used, pitch-class entropy, scale consistency (share of notes in the best-fitting major
or minor scale), groove consistency (onset patterns of consecutive bars), empty-beat
rate.

Diversity of a generated set, for the quality-diversity curves of the GAN evaluation
(Caccia et al. 2020 sweep temperature and read quality against diversity):
`relative_diversity`, the set's mean within-set MGEval feature distance over the
held-out tunes' (1.0 = as varied as real tunes of the style, 0 = every melody alike),
and `distinct_ngrams`, the share of distinct pitch n-grams among all of the set's.

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


def to_muspy(ns: list[Note], steps_per_quarter: int = 4):
    """One melody as a one-track muspy.Music at `steps_per_quarter` time steps per beat."""
    import muspy

    return muspy.Music(resolution=steps_per_quarter, tracks=[muspy.Track(notes=[
        muspy.Note(time=n.start, pitch=n.pitch, duration=n.end - n.start, velocity=64) for n in ns])])


def _onsets_only(m):
    """The same notes with duration 0. MusPy counts bars as end_time // bar + 1, so a melody whose last
    note ends on a barline (every full 64-step window) gains an empty phantom bar that lowers its groove
    consistency by up to 1/(bars - 1); groove reads onsets only, and with zero durations the end time is
    the last onset, so only the bars that onsets span are compared."""
    import muspy

    return muspy.Music(resolution=m.resolution, tracks=[muspy.Track(notes=[
        muspy.Note(time=n.time, pitch=n.pitch, duration=0, velocity=n.velocity) for n in m.tracks[0].notes])])


MUSPY = ("pitch_classes_used", "pitch_class_entropy", "scale_consistency", "groove_consistency", "empty_beat_rate")


def muspy_metrics(ns: list[Note], steps_per_bar: int = 16, steps_per_quarter: int = 4) -> dict:
    """MusPy's metrics of one melody (NaN where MusPy has none, e.g. a melody without notes)."""
    import muspy

    if not ns:
        return {k: float("nan") for k in MUSPY}
    m = to_muspy(ns, steps_per_quarter)
    return {"pitch_classes_used": float(muspy.n_pitch_classes_used(m)),
            "pitch_class_entropy": float(muspy.pitch_class_entropy(m)),
            "scale_consistency": float(muspy.scale_consistency(m)),
            "groove_consistency": float(muspy.groove_consistency(_onsets_only(m), steps_per_bar)),
            "empty_beat_rate": float(muspy.empty_beat_rate(m))}


def validity(melodies: list[list[Note]], lengths: list[int], steps_per_bar: int = 16,
             steps_per_quarter: int = 4) -> dict:
    """Set means of: empty-bar rate, share of notes >= 2 steps, and the MusPy metrics (`muspy_metrics`;
    melodies where one is undefined are left out of its mean).

    `lengths` are the melodies' lengths in steps; a bar is empty when no note sounds in it
    (partial last bars count by their steps).
    """
    empty, long_, per = [], [], []
    for ns, L in zip(melodies, lengths):
        sounding = np.zeros(L, bool)
        for n in ns:
            sounding[n.start:n.end] = True
        bars = [sounding[a:a + steps_per_bar] for a in range(0, L, steps_per_bar)]
        empty.append(np.mean([not b.any() for b in bars]) if bars else 0.0)
        per.append(muspy_metrics(ns, steps_per_bar, steps_per_quarter))
        if ns:
            long_.append(np.mean([(n.end - n.start) >= 2 for n in ns]))
    out = {"empty_bar_rate": float(np.mean(empty)),
           "notes_2_steps_or_longer": float(np.mean(long_)) if long_ else 0.0}
    for k in MUSPY:
        vals = [p[k] for p in per if np.isfinite(p[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


def relative_diversity(generated: dict, reference: dict) -> float:
    """Mean over MGEval features of the generated set's mean within-set distance divided by the reference
    set's (set_features outputs); features on which the reference pieces are all alike are left out."""
    ratios = []
    for f in FEATURES:
        ref = _pairwise(reference[f]).mean() if len(reference[f]) > 1 else 0.0
        if ref > 0 and len(generated[f]) > 1:
            ratios.append(_pairwise(generated[f]).mean() / ref)
    return float(np.mean(ratios)) if ratios else float("nan")


def distinct_ngrams(melodies: list[list[Note]], n: int = 4) -> float:
    """Distinct pitch n-grams (consecutive notes' pitches) over all pitch n-grams of the set; NaN without any."""
    grams = [tuple(x.pitch for x in m[i:i + n]) for m in melodies for i in range(len(m) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")
