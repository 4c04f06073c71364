"""Evaluation on one CPU device against every core: the same trained run evaluated twice, side by side.

    python benchmarks/eval_bench.py --workdir=runs/maml [--devices=1,2] [--out=eval_bench.json]
    python benchmarks/eval_bench.py --workdir=runs/maml --devices=2 --before-src=OLD_CHECKOUT
    python benchmarks/eval_bench.py --workdir=runs/maml --devices=2 --xla-cache=off,cold,warm

With --before-src (a checkout of an earlier commit, e.g. `git archive COMMIT | tar -x -C DIR`), every
device count is evaluated first by that code, then by this checkout, and the ratios are taken to the
earlier code's evaluation: the same checkpoints, one after the other, on the same machine.

--xla-cache (`metamusic.compile_cache`): how this checkout's evaluations meet the persistent XLA compilation
cache, each a separate arm in the order given: `off` (METAMUSIC_XLA_CACHE=0: every program compiled, as
before the cache), `cold` (a fresh, empty cache folder: only programs built twice in one command are read
back) and `warm` (that folder again, as a second evaluation of a run finds it). Default `off`, so the
device counts and checkouts compare compiles alike. An earlier checkout's arm runs with the cache off.

Copies the run's checkpoints (not its saved fine-tuning choices, so both evaluations tune on
meta-val as a first `--mode=eval` does) into a fresh folder per device count and runs
`run_maml.py --mode=eval --config.sharding.cpu_devices=N` there, one after the other. Prints each
evaluation's wall-clock, its phases (`eval.json["seconds"]`) and the ratios to the first count, and
whether every figure of eval.json (methods, tuning, ceiling, style fidelity) is the same. With one
device the evaluation runs as before this benchmark existed (the episodes, oracle fits and sampling
jobs one after another); with N > 1 the episodes are split over the N CPU devices and the oracle's
fits and the fidelity phase's methods run as jobs on them (`metamusic.devices`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _copy_run(src: str, dst: str) -> None:
    os.makedirs(dst)
    shutil.copy(os.path.join(src, "config.json"), dst)
    for name in sorted(os.listdir(src)):
        ck = os.path.join(src, name, "checkpoints")
        if os.path.isdir(ck):
            shutil.copytree(ck, os.path.join(dst, name, "checkpoints"))


def _figures(ev: dict) -> dict:
    """What must not change with the device count: every score, choice and ceiling record."""
    return {k: ev.get(k) for k in ("methods", "tuning", "style_fidelity")}


def _max_diff(a, b, path="") -> tuple[float, str]:
    """The largest absolute difference between two JSON trees of numbers (inf where they differ otherwise)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return float("inf"), path
        return max((_max_diff(a[k], b[k], f"{path}/{k}") for k in a), default=(0.0, path))
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return float("inf"), path
        return max((_max_diff(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))), default=(0.0, path))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)), path
    return (0.0, path) if a == b else (float("inf"), path)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="runs/maml", help="a trained run_maml.py run")
    ap.add_argument("--config", default="configs/maml.py")
    ap.add_argument("--devices", default="1,2", help="CPU device counts, evaluated in this order")
    ap.add_argument("--out", default="", help="write the figures here as JSON")
    ap.add_argument("--keep", default="", help="evaluate into this folder (kept) instead of a temporary one")
    ap.add_argument("--before-src", default="", help="a checkout of earlier code: each count evaluated by it first")
    ap.add_argument("--xla-cache", default="off", help="this checkout's arms, in order: off, cold, warm (comma list)")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.devices.split(",")]
    caches = args.xla_cache.split(",")
    if set(caches) - {"off", "cold", "warm"} or ("warm" in caches and "cold" not in caches[:caches.index("warm")]):
        ap.error(f"--xla-cache={args.xla_cache}: a comma list of off, cold, warm, with cold before warm")
    arms = ([("before", os.path.abspath(args.before_src), "off")] if args.before_src else []) + \
        [("now", ROOT, c) for c in caches]
    base = args.keep or tempfile.mkdtemp(prefix="eval_bench_")
    res = {"workdir": args.workdir, "runs": {}}
    for n in counts:
        for arm, src, cache in arms:
            name = f"devices{n}" + (f"_{arm}" if args.before_src else "") + (f"_cache_{cache}" if len(caches) > 1 else "")
            wd = os.path.join(base, name)
            shutil.rmtree(wd, ignore_errors=True)
            _copy_run(args.workdir, wd)
            folder = os.path.join(base, f"xla_cache_devices{n}")
            if cache == "cold":
                shutil.rmtree(folder, ignore_errors=True)
            env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
            env["METAMUSIC_XLA_CACHE"] = "0" if cache == "off" else folder
            cmd = [sys.executable, os.path.join(src, "run_maml.py"), f"--config={args.config}", f"--workdir={wd}",
                   "--mode=eval", "--config.progress=False", f"--config.sharding.cpu_devices={n}"]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=os.getcwd(), env=env)
            wall = time.perf_counter() - t0
            ev = json.load(open(os.path.join(wd, "eval.json")))
            res["runs"][name] = {"wall_s": round(wall, 1), "phases_s": ev.get("seconds", {}), "figures": _figures(ev)}
            print(f"{name}: {wall:.1f} s  phases {ev.get('seconds', {})}", flush=True)
    names = list(res["runs"])
    first = res["runs"][names[0]]
    for name in names[1:]:
        r = res["runs"][name]
        diff, where = _max_diff(first["figures"], r["figures"])
        r["speedup"] = round(first["wall_s"] / r["wall_s"], 2)
        r["phase_speedups"] = {k: round(first["phases_s"][k] / v, 2) for k, v in r["phases_s"].items()
                               if first["phases_s"].get(k) and v}
        r["largest_figure_difference"] = diff
        print(f"{name} against {names[0]}: {r['speedup']}x wall-clock; phases {r['phase_speedups']}; "
              f"largest difference in any figure {diff:g}" + (f" (at {where})" if diff else " (identical)"))
    for r in res["runs"].values():
        r.pop("figures")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return res


if __name__ == "__main__":
    main()
