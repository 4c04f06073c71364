"""Ingest of a large MIDI folder: files/s and peak memory per MIDI reader and worker count, side by side.

    python benchmarks/ingest_bench.py                        # 20,000 files, every arm at 1 and 2 workers
    python benchmarks/ingest_bench.py --files 2000 --workers 1,2 --json out.json

Builds (once; kept under --folder) a folder of synthetic MIDI files from the test synthesiser
(tests/synth.py: a melody track, block chords, drums, a tempo and meter change; lengths
cycle through --bars), spread over a few style folders as a user corpus is. Then each arm
ingests the whole folder in a fresh process with a fresh, empty parse store (nothing is
answered from a cache): every file is hashed, read, and encoded to tokens, exactly as
`load_corpus` ingests a user folder. Arms:
  today     the ingest before the symusic reader: the metamusic checkout at --today-src (e.g. from
            `git archive dc18986`), else this one with note_seq's reader and one file per message
  note_seq  note_seq's reader, files sent to the workers in chunks
  symusic   the symusic reader (the default), files in chunks
Each arm prints wall seconds, files/s, peak resident memory (the ingesting process's own
high-water mark, and the peak of it plus its workers sampled every 50 ms with psutil), and a
digest of every token, bar position and skip;
the last lines give each arm's speed against `today` at the same worker count and whether
every arm produced the same tokens.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ARMS = ("today", "note_seq", "symusic")
STYLES = 8


def build_folder(folder: str, n: int, bars: list[int]) -> None:
    """n synthetic MIDI files under folder/<style>/; kept and reused when a complete one is there."""
    marker = os.path.join(folder, f".complete-{n}-{'-'.join(map(str, bars))}")
    if os.path.exists(marker):
        return
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import synth

    t0 = time.perf_counter()
    for i in range(n):
        d = os.path.join(folder, f"style{i % STYLES}")
        os.makedirs(d, exist_ok=True)
        synth.write_midi(os.path.join(d, f"tune{i:06d}.mid"), seed=i, n_bars=bars[i % len(bars)],
                         drums=i % 3 != 2, chords=i % 5 != 4, changes=i % 4 != 3, low=i % 11 == 0)
    open(marker, "w").close()
    print(f"built {n} MIDI files in {folder} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)


def run_arm(folder: str, arm: str, workers: int) -> dict:
    """One arm in this process: ingest the folder with a fresh parse store; figures as a dict."""
    import inspect

    from metamusic.data import corpus, ingest, melody, parse_store

    kw = {}
    if "midi_backend" in inspect.signature(ingest.ingest).parameters:  # absent before the symusic reader
        kw["midi_backend"] = "note_seq" if arm == "today" else arm
    if arm == "today":
        ingest.MAX_CHUNK = 1
    enc = melody.EncodingConfig()
    sources = corpus.folder_sources(folder)
    n = sum(len(s.files) for s in sources)
    store = parse_store.ParseStore(parse_store.store_settings(enc, "music21"))
    sampler = _MemorySampler()
    t0 = time.perf_counter()
    mel, skips, _, parsed = ingest.ingest(sources, enc, workers=workers, progress=False, stores=(store, []), **kw)
    wall = time.perf_counter() - t0
    peak_total = sampler.stop()
    assert parsed["files_parsed"] == n
    h = hashlib.sha1()
    for m in mel:
        h.update(m.tokens.tobytes() + b"|" + m.pos.tobytes() + b"|")
    for s in skips:
        h.update(json.dumps(s, sort_keys=True).encode())
    return {"arm": arm, "workers": workers, "files": n, "tunes": len(mel), "skips": len(skips),
            "seconds": round(wall, 2), "files_per_s": round(n / wall, 1),
            "peak_rss_mib_main": round(_own_peak_rss() / 2**20, 1),
            "peak_rss_mib_total": round(peak_total / 2**20, 1) if peak_total else None,
            "digest": h.hexdigest()[:16], "code": os.path.dirname(os.path.dirname(ingest.__file__))}


def _own_peak_rss() -> int:
    """This process's resident high-water mark in bytes (VmHWM: unlike ru_maxrss, not carried over an exec)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kib = 1024 if sys.platform != "darwin" else 1
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib


class _MemorySampler:
    """Peak of this process's resident memory plus its workers', sampled every 50 ms (0 without psutil)."""

    def __init__(self):
        import threading

        self.peak, self._stop = 0, threading.Event()
        try:
            import psutil
        except ImportError:
            return
        me = psutil.Process()

        def run():
            while not self._stop.wait(0.05):
                try:
                    rss = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
                except psutil.Error:  # a worker that just exited
                    continue
                self.peak = max(self.peak, rss)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        if hasattr(self, "_thread"):
            self._thread.join()
        return self.peak


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20000, help="synthetic MIDI files in the folder")
    ap.add_argument("--bars", default="16,32,64", help="tune lengths in bars, cycled over the files")
    ap.add_argument("--workers", default="1,2", help="worker counts to run each arm at")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"readers to compare, of {list(ARMS)}")
    ap.add_argument("--folder", default=None, help="where the MIDI folder is built and kept (default: a temp dir)")
    ap.add_argument("--today-src", default=None,
                    help="a checkout of metamusic before the symusic reader, for the `today` arm")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--_arm", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._arm:
        arm, workers = args._arm.split(":")
        print("ARM " + json.dumps(run_arm(args.folder, arm, int(workers))))
        return 0

    folder = args.folder or os.path.join(tempfile.gettempdir(), f"metamusic-ingest-bench-{args.files}")
    build_folder(folder, args.files, [int(b) for b in args.bars.split(",")])
    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        for arm in args.arms.split(","):
            src = os.path.abspath(args.today_src) if arm == "today" and args.today_src else ROOT
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--folder", folder,
                                  "--_arm", f"{arm}:{workers}"], cwd=src, capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")})
            line = [l for l in out.stdout.splitlines() if l.startswith("ARM ")]
            if out.returncode or not line:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            rows.append(json.loads(line[0][4:]))
            r = rows[-1]
            print(f"{r['arm']:9} workers={r['workers']}  {r['seconds']:8.2f}s  {r['files_per_s']:8.1f} files/s  "
                  f"peak RSS main {r['peak_rss_mib_main']:6.1f} MiB, with workers {r['peak_rss_mib_total']} MiB  "
                  f"tunes={r['tunes']} skips={r['skips']} digest={r['digest']}  ({r['code']})", flush=True)
    base = {r["workers"]: r for r in rows if r["arm"] == "today"}
    for r in rows:
        if r["workers"] in base and r["arm"] != "today":
            r["speedup_vs_today"] = round(r["files_per_s"] / base[r["workers"]]["files_per_s"], 2)
            print(f"{r['arm']} at {r['workers']} worker(s): {r['speedup_vs_today']}x today's files/s")
    same = len({r["digest"] for r in rows}) == 1
    print(f"same tokens, bar positions and skips in every arm: {same}")
    summary = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
               "date": time.strftime("%Y-%m-%d"), "files": args.files, "bars": args.bars, "arms": rows,
               "same_tokens": same}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
