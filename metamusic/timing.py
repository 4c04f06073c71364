"""Where a run's time goes: wall-clock seconds of each phase (data, training per method, evaluation).

A command prints the table at its end and appends it to WORKDIR/timings.jsonl (one
JSON line per command), so a reader sees where a default run's time goes and
how many meta-steps per minute each method ran (steps this command ran / its
seconds, compile and meta-val checks included).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time


class PhaseTimer:
    def __init__(self):
        self.phases: list[dict] = []

    @contextlib.contextmanager
    def phase(self, name: str):
        """Times the block; the yielded dict takes extra fields (e.g. steps)."""
        row = {"phase": name}
        t0 = time.perf_counter()
        try:
            yield row
        finally:
            row["seconds"] = round(time.perf_counter() - t0, 1)
            if row.get("steps"):
                row["steps_per_min"] = round(60.0 * row["steps"] / max(row["seconds"], 1e-9), 1)
            self.phases.append(row)

    def table(self) -> str:
        total = sum(r["seconds"] for r in self.phases)
        lines = ["phase | wall-clock | steps | steps/min", "--- | --- | --- | ---"]
        for r in self.phases:
            lines.append(f"{r['phase']} | {_mmss(r['seconds'])} | {r.get('steps', '')} | {r.get('steps_per_min', '')}")
        lines.append(f"total | {_mmss(total)} |  | ")
        return "\n".join(lines)

    def report(self, workdir: str, mode: str, write: bool = True) -> None:
        """Prints the table (stderr, beside the progress bars) and appends it to workdir/timings.jsonl."""
        if not self.phases:
            return
        print("time per phase (this command):\n" + self.table(), file=sys.stderr)
        if write:
            with open(os.path.join(workdir, "timings.jsonl"), "a") as f:
                f.write(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "mode": mode,
                                    "phases": self.phases}) + "\n")


def _mmss(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{seconds:.1f} s"
