"""Hand-made melody features from tokens (numpy): pitch-class and interval histograms.

Used by the non-learned style classifier (nearest class by histograms) and by the
music metrics. Token layout: see metamusic.data.melody.
"""

from __future__ import annotations

import numpy as np


def notes(tokens: np.ndarray, num_classes: int, min_note: int) -> np.ndarray:
    """MIDI pitches of the note onsets in one token sequence."""
    t = np.asarray(tokens)
    return t[(t >= 2) & (t < num_classes)].astype(np.int64) - 2 + min_note


def histograms(tokens: np.ndarray, num_classes: int, min_note: int, max_interval: int = 12) -> np.ndarray:
    """[12 pitch-class shares | 2*max_interval+1 interval shares] of one sequence (zeros if empty)."""
    p = notes(tokens, num_classes, min_note)
    pc = np.bincount(p % 12, minlength=12).astype(np.float64)
    iv = np.clip(np.diff(p), -max_interval, max_interval) + max_interval
    ih = np.bincount(iv, minlength=2 * max_interval + 1).astype(np.float64)
    return np.concatenate([pc / max(pc.sum(), 1), ih / max(ih.sum(), 1)])


def nearest_class(support: np.ndarray, support_labels: np.ndarray, query: np.ndarray, n_way: int,
                  num_classes: int, min_note: int) -> np.ndarray:
    """Predicted labels of `query` windows: the class whose mean histogram is nearest (L1)."""
    hs = np.stack([histograms(x, num_classes, min_note) for x in support])
    hq = np.stack([histograms(x, num_classes, min_note) for x in query])
    protos = np.stack([hs[support_labels == c].mean(0) for c in range(n_way)])
    return np.abs(hq[:, None] - protos[None]).sum(-1).argmin(-1)
