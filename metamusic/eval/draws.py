"""Per-style draws of support and held-out tunes: what generation evaluations compare samples with."""

from __future__ import annotations

from metamusic.data import TaskSampler


def style_draws(corpus, styles, shots: int, held_out: int, length: int, rng, tune_windows: int = 1) -> dict:
    """style -> ((support tokens [K, T], mask, bar positions), (held-out tokens [M, T], mask, positions)), drawn in `styles` order from
    each style's support and query pools (never the same tunes). tune_windows W > 1: whole tunes, each as W
    consecutive windows ([K*W, T] and [M*W, T]; `openings` takes each tune's first window)."""
    out = {}
    for st in styles:
        t = TaskSampler(corpus, [st], shots=shots, queries=held_out, length=length, pool="support/query",
                        tune_windows=tune_windows).sample(rng, 1)
        out[st] = ((t.support[0], t.support_mask[0], t.support_pos[0]), (t.query[0], t.query_mask[0], t.query_pos[0]))
    return out


def openings(batch, tune_windows: int):
    """The first window of each tune of a whole-tune batch ([N*W, T] arrays -> [N, T]): a tune's opening, what
    a melody sampled from BOS is compared with."""
    return tuple(x[::tune_windows] for x in batch)
