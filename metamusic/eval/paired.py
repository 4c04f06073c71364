"""Paired comparisons on shared episodes, and the share of the measured headroom a method closes.

Every method of a few-shot evaluation is scored on the same episodes, so the
question "is A better than B" is answered by the per-episode differences A - B:
episode difficulty, which dominates the spread of each method's own scores,
cancels. The unpaired +- CIs of two methods can overlap while the paired CI of
their difference excludes zero: the paired test resolves differences far smaller
than either method's own CI (docs/design_notes.md#paired-differences). Numpy and
scipy only (scipy comes with jax).
"""

from __future__ import annotations

import math

import numpy as np


def paired_difference(a, b) -> dict:
    """Mean of a - b over paired episodes with its 95% CI (Student t, n - 1 degrees of freedom).

    Returns {"mean", "ci95" (half-width), "episodes", "excludes_zero"}; lower is better for
    NLL, so a negative mean whose CI excludes zero says `a` beat `b`.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores need equal 1-D shapes, got {a.shape} and {b.shape}")
    d = a - b
    mean, half = t_interval(d)
    return {"mean": mean, "ci95": half, "episodes": int(d.size), "excludes_zero": bool(abs(mean) > half)}


def t_interval(x) -> tuple[float, float]:
    """(mean, half-width of its 95% CI) of 1-D values (Student t, n - 1 degrees of freedom; inf under 2 values)."""
    from scipy import stats

    x = np.asarray(x, np.float64)
    n = x.size
    mean = float(x.mean()) if n else math.nan
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)) if n >= 2 else math.inf
    return mean, half


def headroom_closed(joint, method, oracle, *, resamples: int = 1000, seed: int = 0) -> dict:
    """(joint - method) / (joint - oracle) on mean scores over paired episodes, with a bootstrap 95% CI.

    1.0: the method does as well as the oracle; 0: no better than the joint model; negative:
    worse. The CI resamples episodes (the same draw for all three arrays). `share` is None
    when the oracle does not beat the joint model on these episodes (no measured headroom).
    """
    j, m, o = (np.asarray(x, np.float64) for x in (joint, method, oracle))
    gap = j.mean() - o.mean()
    out = {"share": None, "ci95": [None, None], "headroom_nats": float(gap)}
    if not gap > 0:
        return out
    out["share"] = float((j.mean() - m.mean()) / gap)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, j.size, size=(resamples, j.size))
    gaps = j[idx].mean(1) - o[idx].mean(1)
    ok = gaps > 0
    shares = (j[idx].mean(1)[ok] - m[idx].mean(1)[ok]) / gaps[ok]
    if shares.size:
        out["ci95"] = [float(np.percentile(shares, 2.5)), float(np.percentile(shares, 97.5))]
    return out
