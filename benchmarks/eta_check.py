"""Do the evaluation's progress ETAs hold? Evaluates a trained run with its bars on and compares
every ETA a bar showed with when its phase really ended.

    python benchmarks/eta_check.py --workdir=runs/maml [--out=eta_check.json] [--keep=DIR]
    python benchmarks/eta_check.py --workdir=runs/relation --script=run_relation.py --config=configs/relation.py

Copies the run's checkpoints (as benchmarks/eval_bench.py does, so the evaluation tunes on meta-val as a
first `--mode=eval` does) and runs `run_maml.py --mode=eval` with its stderr on a pseudo-terminal, so the
bars redraw twice a second as they do for a user. For each phase it prints its length and, at the updates
nearest 25%, 50% and 75% of its work, the remaining time the bar showed against the remaining time it
really took (and their ratio: 1.0 is an ETA that held).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import re
import subprocess
import sys
import tempfile
import shutil
import struct
import termios
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BAR = re.compile(r"(evaluate: [^\r\n:]+):\s+(\d+)%\|[^|]*\| \[([\d:]+)<([\d:?]+)\]")


def _seconds(text: str) -> float | None:
    if "?" in text:
        return None
    s = 0.0
    for part in text.split(":"):
        s = s * 60 + float(part)
    return s


def phases(stream: str) -> dict:
    """{phase: [(percent, elapsed s, remaining s or None), ...]} from a captured stream of tqdm redraws."""
    out: dict = {}
    for m in BAR.finditer(stream):
        out.setdefault(m.group(1).strip(), []).append((int(m.group(2)), _seconds(m.group(3)), _seconds(m.group(4))))
    return out


def holds(updates: list, at=(25, 50, 75)) -> dict:
    """The phase's length, and at the update nearest each share of its work: shown vs real remaining time."""
    end = max(e for _, e, _ in updates)
    res = {"seconds": end}
    for share in at:
        shown = [(abs(p - share), p, e, r) for p, e, r in updates if r is not None and 0 < p < 100]
        if not shown:
            continue
        _, p, e, r = min(shown)
        real = end - e
        res[f"{share}%"] = {"at_percent": p, "elapsed": e, "eta_shown": r, "remaining_real": real,
                            "ratio": round(r / real, 2) if real > 0 else None}
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="runs/maml", help="a trained run_maml.py run")
    ap.add_argument("--config", default="configs/maml.py")
    ap.add_argument("--script", default="run_maml.py", help="the run's entry script (run_relation.py: classification)")
    ap.add_argument("--out", default="", help="write the figures here as JSON")
    ap.add_argument("--keep", default="", help="evaluate into this folder (kept) instead of a temporary one")
    args = ap.parse_args(argv)
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from eval_bench import _copy_run

    wd = args.keep or os.path.join(tempfile.mkdtemp(prefix="eta_check_"), "run")
    shutil.rmtree(wd, ignore_errors=True)
    _copy_run(args.workdir, wd)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 120-column terminal
    cmd = [sys.executable, os.path.join(ROOT, args.script), f"--config={args.config}", f"--workdir={wd}",
           "--mode=eval"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                            cwd=os.getcwd())
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait()
    os.close(master)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"the evaluation failed (exit {proc.returncode})")
    found = {name: holds(u) for name, u in phases(b"".join(chunks).decode("utf-8", "replace")).items()}
    res = {"workdir": args.workdir, "wall_s": round(wall, 1), "phases": found}
    print(f"evaluation: {wall:.1f} s")
    for name, r in found.items():
        cells = [f"{k}: shown {v['eta_shown']:.0f} s, real {v['remaining_real']:.0f} s ({v['ratio']}x)"
                 for k, v in r.items() if k != "seconds"]
        print(f"{name} ({r['seconds']:.0f} s): " + "; ".join(cells))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    if not args.keep:
        shutil.rmtree(os.path.dirname(wd), ignore_errors=True)
    return res


if __name__ == "__main__":
    main()
