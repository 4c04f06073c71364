"""Progress bars for the long phases of an evaluation, with ETAs that hold.

A bar's ETA is (work left) / (mean rate so far), so it holds only when the units are of about equal
cost and the total is the work that will actually be done. Each phase therefore counts the unit its
time goes into, weighted where one unit costs more than another:

  ceiling fits   Adam steps; a fit that stops early (patience) gives back the steps it will not
                 take, and the fits not yet finished are expected to take as many steps as the
                 finished ones did on average (`FitSteps`);
  tuning, K=...  episode adaptation steps: a curve over E episodes with S inner steps is E * (S + 1)
                 (the query is scored after every step, before the first too);
  style fidelity (method, style, draw) adaptations with their samples.

The rate is the mean over the whole phase (tqdm's smoothing=0), not over the last few updates, so the
first update, which carries the compilation, does not make the next ones look slow or fast for long.

The code doing the work reports to the phase that is open (`advance`) rather than taking a callback
through every layer: evaluation code calls `adapt_curves` from several places (tuning, episodes), and
a bar is a side channel that never changes a figure. Nothing here imports JAX.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Optional

_lock = threading.Lock()
_open: list = []  # the phases open now, innermost last (work is reported to the innermost)


class Phase:
    """One phase's bar: `total` units expected; `advance(n)` as they are done; `expect(total)` revises the
    total when the work turns out smaller or larger (a choice read from disk, a fit stopped early)."""

    def __init__(self, desc: str, total: float, enabled: bool = True):
        from tqdm import tqdm

        self.desc, self.done = desc, 0.0
        self.bar = tqdm(total=max(float(total), 1.0), desc=desc, disable=not enabled, dynamic_ncols=True,
                        smoothing=0, bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
                        mininterval=0.5 if sys.stderr.isatty() else 30)

    @property
    def total(self) -> float:
        return self.bar.total

    def advance(self, n: float = 1.0) -> None:
        with _lock:
            self.done += n
            self.bar.update(n)

    def expect(self, total: float) -> None:
        with _lock:
            self.bar.total = max(float(total), self.done, 1.0)
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


@contextlib.contextmanager
def phase(desc: str, total: float, enabled: bool = True):
    """A bar open for the `with` block; `advance` reports to it."""
    p = Phase(desc, total, enabled)
    _open.append(p)
    try:
        yield p
    finally:
        _open.remove(p)
        p.close()


def current() -> Optional[Phase]:
    return _open[-1] if _open else None


def advance(n: float = 1.0) -> None:
    """Reports `n` units done to the open phase, if any (work done outside a phase is not shown)."""
    p = current()
    if p is not None:
        p.advance(n)


def skip(n: float) -> None:
    """Tells the open phase that `n` of its expected units will not be done (e.g. a saved choice was read)."""
    p = current()
    if p is not None:
        p.expect(p.total - n)


def curve_units(episodes: int, steps: int) -> int:
    """The units of an adaptation curve: every episode's query is scored before and after each step."""
    return int(episodes) * (int(steps) + 1)


class FitSteps:
    """The expected Adam steps of a set of fits that may stop early: while none has finished, every fit
    is expected to run its most steps; after that, each unfinished fit as many as the finished ones took
    on average (at least what is already done). `finished(steps)` revises the phase's total."""

    def __init__(self, p: Optional[Phase], fits: int, most: int):
        self.p, self.fits, self.most, self.used = p, fits, most, []
        if p is not None:
            p.expect(self.expected())

    def expected(self) -> float:
        left = self.fits - len(self.used)
        per = sum(self.used) / len(self.used) if self.used else self.most
        return sum(self.used) + left * per

    def finished(self, steps: int) -> None:
        with _lock:
            self.used.append(int(steps))
        if self.p is not None:
            self.p.expect(self.expected())
