"""Meta-step throughput (tasks/s), compile time and peak memory of the MAML family on the melody LMs.

    python benchmarks/meta_step_bench.py                         # maml, fomaml, reptile, mamlpp; default workload
    python benchmarks/meta_step_bench.py --compare-torch         # + the PyTorch reference, alternating, ratios
    python benchmarks/meta_step_bench.py --impl=fast --hidden=128 --meta-batch=16 --out=bench.json
    python benchmarks/meta_step_bench.py --algos=fomaml,maml --task-map=vmap,map --host-devices=1  # A/B of task layouts

Default workload (issue 6): token embedding (vocab 40, dim 64) -> 1-layer LSTM
(hidden 256) -> linear 40; K=5 support + 5 query sequences of 64 tokens; 5 inner
SGD steps (lr 0.1); Adam 1e-3 outer; meta-batch 8; float32. The step is the
library's own `meta.outer.make_outer_step` over `meta.make_algorithm` and
`models.make_model`, on one fixed random meta-batch (data sampling is measured
by data_bench.py).

Every configuration runs in its own worker process (fresh compile caches, its own
peak RSS). Workers compile, then the parent asks them for timed blocks in turn:
with --compare-torch the JAX and PyTorch workers alternate block by block, so
load from other processes on the machine hits both alike. Reported: median
tasks/s over --reps blocks of at least --seconds each; compile time
(`lower().compile()`, plus the first call for torch, which has none); peak RSS
of the worker (`ru_maxrss`, includes the runtime) and XLA's temp buffer size for
the step (`compiled.memory_analysis()`); matmul FLOPs of the step counted from
its jaxpr (scan bodies times their length) and the achieved FLOP/s against a
measured 1024x1024 float32 `jnp.dot`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time


ALGOS = ("maml", "fomaml", "reptile", "mamlpp")


# --------------------------------------------------------------------------- JAX side

def _dot_flops(jaxpr) -> float:
    """Matmul FLOPs of a jaxpr: dot_generals, scan bodies times their length, cond's costliest branch."""
    import numpy as np
    from jax.extend import core as jcore

    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            (lc, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            out = eqn.outvars[0].aval.shape
            total += 2.0 * float(np.prod(out)) * float(np.prod([lhs[d] for d in lc]))
            continue
        subs = []
        for v in eqn.params.values():
            for s in (v if isinstance(v, (tuple, list)) else (v,)):
                if isinstance(s, jcore.ClosedJaxpr):
                    subs.append(s.jaxpr)
                elif isinstance(s, jcore.Jaxpr):
                    subs.append(s)
        if not subs:
            continue
        if name == "cond":
            total += max(_dot_flops(s) for s in subs)
        elif name == "scan":
            total += eqn.params["length"] * sum(_dot_flops(s) for s in subs)
        elif name == "while":
            total += _dot_flops(eqn.params["body_jaxpr"].jaxpr)  # trip count unknown: counted once
        else:
            total += sum(_dot_flops(s) for s in subs)
    return total


def matmul_peak(n: int = 1024, seconds: float = 1.0) -> float:
    """Measured float32 GFLOP/s of an n x n jnp.dot (median of 5 timed blocks)."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(jnp.dot)
    f(a, a).block_until_ready()
    rates = []
    for _ in range(5):
        t0, k = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds / 5:
            f(a, a).block_until_ready()
            k += 1
        rates.append(2.0 * n ** 3 * k / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)


def build_jax(args, algo_name: str, task_map: str = "vmap"):
    """(step function of no arguments, info dict) for one algorithm; task_map as `meta.outer.task_grads`."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from metamusic.meta.algorithm import InnerSpec, Task
    from metamusic.meta.registry import ALGORITHMS, make_algorithm
    from metamusic.meta.outer import init_state, make_outer_step
    from metamusic.models import lm_loss, make_model

    kw = {"lstm": dict(embed_dim=args.embed, hidden=args.hidden, layers=args.layers, impl=args.impl),
          "transformer": dict(dim=args.hidden, layers=args.layers, heads=4, max_len=max(512, args.length))}
    if args.impl == "flax":
        kw["lstm"].pop("impl")  # so the bench also runs on code from before the option existed (before/after comparisons)
    model = make_model(args.model, args.vocab, **kw[args.model])

    def loss_fn(params, batch, key):
        tokens, mask = batch
        return lm_loss(model, params, tokens, mask)

    algo = make_algorithm(algo_name, loss_fn, InnerSpec(args.inner_steps, args.inner_lr, args.remat),
                          **({"first_order_steps": 0} if "first_order_steps" in ALGORITHMS[algo_name].options else {}))
    tx = optax.adam(args.outer_lr)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, args.length - 1), jnp.int32))
    state = init_state(algo, tx, params)
    rng = np.random.default_rng(0)
    B, K, Q, T = args.meta_batch, args.shots, args.queries, args.length
    tok = lambda n: jnp.asarray(rng.integers(2, args.vocab - 2, (B, n, T)), jnp.int32)
    tasks = Task((tok(K), jnp.ones((B, K, T))), (tok(Q), jnp.ones((B, Q, T))))
    key = jax.random.PRNGKey(1)
    from metamusic.meta.registry import task_map_for

    task_map = task_map_for(algo_name, task_map)  # "auto": the library's choice (configs/maml.py)
    step = make_outer_step(algo, tx, task_map)
    if args.host_devices > 1:  # the task axis split over N CPU "devices", each run by its own thread
        from jax.sharding import NamedSharding, PartitionSpec

        from metamusic.meta.outer import outer_step
        from metamusic.train import sharding

        mesh = sharding.make_mesh(args.host_devices)
        repl = NamedSharding(mesh, PartitionSpec())
        step = jax.jit(lambda s, t, k: outer_step(algo, tx, s, t, k, None, task_map, mesh), out_shardings=repl,
                       donate_argnums=(0,))
        state, tasks = sharding.replicate(state, mesh), sharding.shard_tasks(tasks, mesh)
        key = jax.device_put(key, repl)

    t0 = time.perf_counter()
    lowered = step.lower(state, tasks, key)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    flops = _dot_flops(jax.make_jaxpr(lambda s, t, k: step(s, t, k))(state, tasks, key).jaxpr)
    if args.host_devices > 1:  # the shard_map body's shapes are one device's share of the tasks
        flops *= args.host_devices
    mem = compiled.memory_analysis()
    info = {"compile_s": compile_s, "flops_per_step": flops, "task_map": task_map,
            "xla_temp_mb": getattr(mem, "temp_size_in_bytes", 0) / 2 ** 20 if mem else None}
    box = {"state": state}

    def run(n):
        s = box["state"]
        for _ in range(n):
            s, m = compiled(s, tasks, key)
        jax.block_until_ready(m["loss"])
        box["state"] = s

    return run, info


# --------------------------------------------------------------------------- torch side

def build_torch(args, algo_name: str):
    import torch

    from torch_reference import MetaStep

    torch.set_num_threads(os.cpu_count())
    step = MetaStep(vocab=args.vocab, embed=args.embed, hidden=args.hidden, meta_batch=args.meta_batch,
                    shots=args.shots, queries=args.queries, length=args.length, inner_steps=args.inner_steps,
                    inner_lr=args.inner_lr, outer_lr=args.outer_lr, first_order=algo_name == "fomaml",
                    model=args.model, layers=args.layers)
    t0 = time.perf_counter()
    step()
    info = {"compile_s": time.perf_counter() - t0, "flops_per_step": None, "xla_temp_mb": None,
            "torch": torch.__version__}

    def run(n):
        for _ in range(n):
            step()

    return run, info


# --------------------------------------------------------------------------- workers

def _worker(conn, kind: str, args, algo_name: str):
    if kind.startswith("jax") and args.host_devices > 1:  # before this (spawned) process imports jax
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={args.host_devices}").strip()
    try:
        if kind.startswith("jax"):
            run, info = build_jax(args, algo_name, kind.partition(":")[2] or "vmap")
        else:
            run, info = build_torch(args, algo_name)
        run(1)  # warm-up after compilation
        t0 = time.perf_counter()
        run(1)
        per_step = time.perf_counter() - t0
        conn.send(("ready", info))
        while True:
            msg = conn.recv()
            if msg == "stop":
                break
            n = max(1, round(msg / per_step))
            t0 = time.perf_counter()
            run(n)
            dt = time.perf_counter() - t0
            per_step = dt / n
            conn.send(("rate", n * args.meta_batch / dt))
        conn.send(("done", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    except BaseException as e:  # report, don't hang the parent
        import traceback

        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


class Worker:
    def __init__(self, kind: str, args, algo_name: str):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, kind, args, algo_name), daemon=True)
        self.proc.start()
        self.kind, self.algo = kind, algo_name
        self.info = self._recv("ready")

    def _recv(self, want):
        tag, val = self.conn.recv()
        if tag == "error":
            raise RuntimeError(f"{self.kind} worker for {self.algo} failed: {val}")
        assert tag == want, (tag, want)
        return val

    def rate(self, seconds: float) -> float:
        self.conn.send(seconds)
        return self._recv("rate")

    def stop(self) -> float:
        self.conn.send("stop")
        rss = self._recv("done")
        self.proc.join()
        return rss


# --------------------------------------------------------------------------- driver

def measure(args, algo_name: str, kinds: list[str]) -> dict:
    """Compile each kind's worker, then alternate timed blocks between them."""
    workers = [Worker(k, args, algo_name) for k in kinds]
    rates = {k: [] for k in kinds}
    for rep in range(args.reps):
        for w in (workers if rep % 2 == 0 else workers[::-1]):
            rates[w.kind].append(w.rate(args.seconds))
    out = {}
    for w in workers:
        med = statistics.median(rates[w.kind])
        out[w.kind] = dict(w.info, tasks_per_s=med, rates=[round(r, 2) for r in rates[w.kind]],
                           peak_rss_mb=w.stop())
        if w.info.get("flops_per_step"):
            out[w.kind]["gflops_per_s"] = w.info["flops_per_step"] * med / args.meta_batch / 1e9
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", default=",".join(ALGOS), help="comma list of " + ",".join(ALGOS))
    ap.add_argument("--model", default="lstm", choices=("lstm", "transformer"))
    ap.add_argument("--impl", default="fast", help="LSTM implementation: fast (models/recurrent.py, the configs' default) or flax (OptimizedLSTMCell)")
    ap.add_argument("--meta-batch", type=int, default=8)
    ap.add_argument("--inner-steps", type=int, default=5)
    ap.add_argument("--inner-lr", type=float, default=0.1)
    ap.add_argument("--outer-lr", type=float, default=1e-3)
    ap.add_argument("--length", type=int, default=64, help="tokens per sequence")
    ap.add_argument("--hidden", type=int, default=256, help="LSTM width (Transformer: model dim)")
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--vocab", type=int, default=40)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--queries", type=int, default=5)
    ap.add_argument("--remat", action="store_true", help="jax.checkpoint each inner step")
    ap.add_argument("--task-map", default="auto",
                    help="how the JAX step runs the meta-batch's tasks: vmap, map (lax.map, one after another) or "
                         "auto (the library's default, meta.registry.task_map_for: map for every algorithm here); "
                         "a comma list measures each, side by side")
    ap.add_argument("--host-devices", type=int, default=None,
                    help="split the JAX step's tasks over this many CPU devices (XLA's "
                         "--xla_force_host_platform_device_count), each running its share; default: "
                         "configs/maml.py's sharding.cpu_devices, what training uses on the CPU; 1: off")
    ap.add_argument("--reps", type=int, default=5, help="timed blocks per implementation (median reported)")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each timed block")
    ap.add_argument("--compare-torch", action="store_true",
                    help="also run the PyTorch reference (maml and fomaml), alternating with JAX")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.host_devices is None:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from configs import maml as maml_config

        args.host_devices = max(1, int(maml_config.get_config().sharding.cpu_devices))
    if args.meta_batch % args.host_devices:
        ap.error(f"--meta-batch={args.meta_batch} does not split over --host-devices={args.host_devices}")
    algos = [a for a in args.algos.split(",") if a]
    bad = [a for a in algos if a not in ALGOS]
    if bad:
        ap.error(f"unknown --algos {bad}; choose from {ALGOS}")
    task_maps = [t for t in args.task_map.split(",") if t]
    if not task_maps or any(t not in ("vmap", "map", "auto") for t in task_maps):
        ap.error(f"--task-map={args.task_map!r}: a comma list of vmap, map, auto")

    peak = matmul_peak()
    results = {}
    for a in algos:
        kinds = [f"jax:{t}" for t in task_maps] + (["torch"] if args.compare_torch and a in ("maml", "fomaml") else [])
        results[a] = measure(args, a, kinds)
        print(f"  {a}: " + ", ".join(f"{k} {v['tasks_per_s']:.2f} tasks/s" for k, v in results[a].items()),
              file=sys.stderr, flush=True)

    hdr = ["algorithm", "impl", "tasks/s", "vs torch", "compile s", "GFLOP/s", "% of matmul peak", "peak RSS MB",
           "XLA temp MB"]
    rows = []
    for a, r in results.items():
        for k, v in r.items():
            jax_kind = k.startswith("jax")
            dev = f"/{args.host_devices} devices" if args.host_devices > 1 else ""
            impl = f"jax/{args.impl}/{v.get('task_map', '')}{dev}" if jax_kind else f"torch {v['torch']}"
            ratio = f"{v['tasks_per_s'] / r['torch']['tasks_per_s']:.2f}x" if jax_kind and "torch" in r else ""
            g = v.get("gflops_per_s")
            rows.append([a, impl, f"{v['tasks_per_s']:.2f}", ratio, f"{v['compile_s']:.1f}",
                         f"{g:.1f}" if g else "", f"{100 * g / peak:.0f}%" if g else "", f"{v['peak_rss_mb']:.0f}",
                         f"{v['xla_temp_mb']:.0f}" if v.get("xla_temp_mb") is not None else ""])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(hdr)]
    print(f"workload: {args.model} ({args.impl}) hidden {args.hidden}, meta-batch {args.meta_batch}, K={args.shots}"
          f"+{args.queries}, T={args.length}, {args.inner_steps} inner steps; median of {args.reps} x "
          f">={args.seconds}s blocks; 1024^2 f32 matmul peak {peak:.0f} GFLOP/s")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(hdr, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    if args.out:
        import jax

        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "machine": f"{platform.machine()} {os.cpu_count()} cores",
                       "date": time.strftime("%Y-%m-%d"), "jax": jax.__version__,
                       "matmul_peak_gflops": peak, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
