"""Per-style draws of support and held-out tunes: what generation evaluations compare samples with."""

from __future__ import annotations

from metamusic.data import TaskSampler


def style_draws(corpus, styles, shots: int, held_out: int, length: int, rng) -> dict:
    """style -> ((support tokens [K, T], mask, bar positions), (held-out tokens [M, T], mask, positions)), drawn in `styles` order from
    each style's support and query pools (never the same tunes)."""
    out = {}
    for st in styles:
        t = TaskSampler(corpus, [st], shots=shots, queries=held_out, length=length, pool="support/query").sample(rng, 1)
        out[st] = ((t.support[0], t.support_mask[0], t.support_pos[0]), (t.query[0], t.query_mask[0], t.query_pos[0]))
    return out
