"""Data-layer figures: cached-corpus load time, ingest rate, and sampler tasks/s.

    python benchmarks/data_bench.py [--root DIR] [--json OUT.json]
    python benchmarks/data_bench.py --first-ingest   # a fresh machine's first load: parse store vs full parse

Runs on the bundled corpus by default (ingesting it first if no cache exists).
Sampler: generation tasks with K=5 support, Q=5 query, T=64 tokens, meta-batch 8
(the MAML workload), and 5-way 5-shot classification episodes; median of
--repeats timed blocks, one core (numpy is single-threaded here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np


from metamusic.data import EpisodeSampler, TaskSampler, load_corpus


def _rate(fn, n_items: int, repeats: int, min_seconds: float = 0.5) -> list[float]:
    """Items/s over `repeats` blocks, each at least `min_seconds` long."""
    fn()  # warm-up
    rates = []
    for _ in range(repeats):
        t0, calls = time.perf_counter(), 0
        while time.perf_counter() - t0 < min_seconds:
            fn()
            calls += 1
        rates.append(calls * n_items / (time.perf_counter() - t0))
    return rates


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--first-ingest", action="store_true",
                    help="time a first load into two empty cache folders: with the parse stores (for the bundled "
                         "corpus: the shipped one), then parsing every file (rebuild); checks both give one corpus")
    args = ap.parse_args(argv)
    if args.first_ingest:
        return first_ingest(args)

    t0 = time.perf_counter()
    corpus = load_corpus(args.root, cache_dir=args.cache_dir)
    first = time.perf_counter() - t0
    loads = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        load_corpus(args.root, cache_dir=args.cache_dir, progress=False)
        loads.append(time.perf_counter() - t0)
    rep = corpus.report
    n_found = sum(s["tunes_found"] for s in rep["sources"].values())

    train = corpus.styles_in("train")
    B = 8
    tasks = TaskSampler(corpus, train, shots=5, queries=5, length=64)
    rng = np.random.default_rng(0)
    task_rates = _rate(lambda: tasks.sample(rng, B), B, args.repeats)
    ways = min(5, len(train))
    eps = EpisodeSampler(corpus, train, ways=ways, shots=5, queries=5, length=64)
    ep_rates = _rate(lambda: eps.sample(rng, B), B, args.repeats)

    out = {
        **_machine(),
        "corpus": {"tunes": len(corpus), "styles": len(corpus.styles), "tunes_found": n_found},
        "first_call_seconds": round(first, 2),
        "ingest_seconds": rep.get("ingest_seconds"),
        "ingest_tunes_per_s": round(n_found / rep["ingest_seconds"], 1) if rep.get("ingest_seconds") else None,
        "cached_load_seconds_median": round(statistics.median(loads), 3),
        "generation_tasks_per_s_median": round(statistics.median(task_rates)),
        f"episodes_{ways}way5shot_per_s_median": round(statistics.median(ep_rates)),
    }
    _emit(out, args.json)
    return 0


def _machine() -> dict:
    return {"machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
            "date": time.strftime("%Y-%m-%d")}


def _emit(out: dict, path) -> None:
    """Prints the figures as aligned lines; also writes them to `path` as JSON when given."""
    w = max(len(k) for k in out)
    for k, v in out.items():
        print(f"{k:{w}}  {v}")
    if path:
        with open(path, "w") as f:
            json.dump(out, f, indent=1)


def first_ingest(args) -> int:
    import tempfile

    out = _machine()
    corpora = {}
    for name, rebuild in (("with_parse_store", False), ("parsing_every_file", True)):
        with tempfile.TemporaryDirectory() as cdir:
            t0 = time.perf_counter()
            corpora[name] = c = load_corpus(args.root, cache_dir=cdir, rebuild=rebuild, progress=False)
            out[f"{name}_seconds"] = round(time.perf_counter() - t0, 1)
            out[f"{name}_files_parsed"] = c.report.get("files_parsed")
    a, b = corpora.values()
    out["same_corpus"] = bool(np.array_equal(a.tokens, b.tokens) and np.array_equal(a.positions, b.positions)
                              and a.meta == b.meta and a.split_of == b.split_of)
    out["tunes"] = len(a)
    _emit(out, args.json)
    return 0 if out["same_corpus"] else 1


if __name__ == "__main__":
    sys.exit(main())
