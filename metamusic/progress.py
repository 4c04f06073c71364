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
Where the compiles are a large part of the phase, spread over its first units rather than one (the meta-GAN's
samples: the first style compiles every method's adaptation and sampler), the phase names those units as its
`warmup`, and once they are done its rate counts only the units after them.

The code doing the work reports to the phase that is open (`advance`) rather than taking a callback
through every layer: evaluation code calls `adapt_curves` from several places (tuning, episodes), and
a bar is a side channel that never changes a figure. Nothing here imports JAX.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from typing import Optional

_lock = threading.Lock()
_open: list = []  # the phases open now, innermost last (work is reported to the innermost)


@functools.cache
def _bar_class():
    """tqdm with a rate that can leave out a phase's warm-up (imported late: tqdm is only needed for bars)."""
    from tqdm import tqdm

    class Bar(tqdm):
        warm = None  # (units done, time) once the warm-up units are done; the rate counts the units since

        @property
        def format_dict(self):
            d = super().format_dict
            if self.warm is not None and self.n > self.warm[0] and self._time() > self.warm[1]:
                d["rate"] = (self.n - self.warm[0]) / (self._time() - self.warm[1])
            return d

    return Bar


class Phase:
    """One phase's bar: `total` units expected; `advance(n)` as they are done; `expect(total)` revises the
    total when the work turns out smaller or larger (a choice read from disk, a fit stopped early).
    warmup: the first units, which carry the compiles; once they are done, the ETA reads the rate of the
    units after them only."""

    def __init__(self, desc: str, total: float, enabled: bool = True, warmup: float = 0.0):
        self.desc, self.done, self.warmup = desc, 0.0, float(warmup)
        self.bar = _bar_class()(total=max(float(total), 1.0), desc=desc, disable=not enabled, dynamic_ncols=True,
                                smoothing=0, bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
                                mininterval=0.5 if sys.stderr.isatty() else 30)

    @property
    def total(self) -> float:
        return self.bar.total

    def advance(self, n: float = 1.0) -> None:
        with _lock:
            self.done += n
            if self.warmup and self.bar.warm is None and self.done >= self.warmup and not self.bar.disable:
                self.bar.warm = (self.bar.n + n, self.bar._time())
            self.bar.update(n)

    def expect(self, total: float) -> None:
        with _lock:
            self.bar.total = max(float(total), self.done, 1.0)
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


@contextlib.contextmanager
def phase(desc: str, total: float, enabled: bool = True, warmup: float = 0.0):
    """A bar open for the `with` block; `advance` reports to it."""
    p = Phase(desc, total, enabled, warmup)
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
