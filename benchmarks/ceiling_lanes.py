"""The ceiling's Adam step with several fits as vmapped lanes, against one fit per step.

    python benchmarks/ceiling_lanes.py --workdir=runs/maml [--lanes=1,2,3,6] [--steps=30] [--repeats=5] [--out=F.json]

The style oracle (`metamusic.oracle`) fine-tunes every start at every lr of `baselines.oracle_lrs`, and
all of a style's fits draw the same minibatches (one seed per style). So they could step together, as
lanes of one vmapped step. This measures whether that pays on this machine, and whether it keeps the
numbers:
  * time: the jitted Adam step of the run's model on `baselines.oracle_batch` fit windows of its first
    meta-test style, one lane (the step the ceiling runs today) and N lanes; median ms per call over
    `--repeats` blocks of `--steps` calls, and ms per fit (per lane);
  * numbers: two lanes (the default's two lrs) against two single fits, the largest parameter
    difference after `--steps` steps with the same minibatches and keys.
The run's joint model is every lane's start. One device, nothing else loaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", required=True, help="a trained melody run (run_maml.py --mode=train or all)")
    ap.add_argument("--lanes", default="1,2,3,6", help="lane counts to time (1: the single step)")
    ap.add_argument("--steps", type=int, default=30, help="steps per timed block")
    ap.add_argument("--repeats", type=int, default=5, help="timed blocks (the median is printed)")
    ap.add_argument("--out", default="", help="also write the figures as JSON here")
    a = ap.parse_args(argv)
    import json

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from metamusic import experiments, oracle
    from metamusic.eval.fewshot import trained_adapters
    from metamusic.experiments import inputs

    cfg = experiments.run_config(a.workdir, "melody")
    exp = experiments.build(cfg, inputs.load_data(cfg))
    params = trained_adapters(exp, a.workdir)["joint"].meta["params"]
    style = exp.corpus.styles_in("test")[0]
    fit = oracle.oracle_data(exp.corpus, style, cfg.data.length, cfg.baselines.oracle_holdout, cfg.seed)[0]
    batch = cfg.baselines.oracle_batch
    lrs = oracle.oracle_lrs(cfg.baselines)

    def step(p, opt, b, key, lr):  # the ceiling's step (oracle.oracle_fitter)
        grads = jax.grad(lambda q: exp.loss_fn(q, b, key)[0])(p)
        updates, opt = optax.adam(lr).update(grads, opt, p)
        return optax.apply_updates(p, updates), opt

    single = jax.jit(step)
    lanes = jax.jit(jax.vmap(step, in_axes=(0, 0, None, None, 0)))
    stack = lambda tree, n: jax.tree.map(lambda x: jnp.stack([x] * n), tree)
    rng = np.random.default_rng(cfg.seed)
    picks = [rng.integers(0, len(fit[0]), size=batch) for _ in range(a.steps)]
    batches = [tuple(jnp.asarray(x[p]) for x in fit) for p in picks]
    keys = [jax.random.fold_in(jax.random.PRNGKey(cfg.seed), i) for i in range(a.steps)]
    opt0 = optax.adam(lrs[0]).init(params)

    print(f"run {a.workdir}; style {style}: {len(fit[0])} fit windows, {batch} a step; lrs {list(lrs)}; "
          f"jax {jax.__version__}, {jax.devices()[0].platform}")
    base, record = None, {"workdir": a.workdir, "style": style, "lrs": list(lrs), "timing": [], "difference": {}}
    print("lanes | ms per call (median) | ms per fit | vs one fit per step")
    print("--- | --- | --- | ---")
    for n in [int(x) for x in a.lanes.split(",")]:
        if n == 1:
            call = lambda p, o, b, k: single(p, o, b, k, jnp.float32(lrs[0]))
            p, o = params, opt0
        else:
            lr = jnp.asarray([lrs[i % len(lrs)] for i in range(n)], jnp.float32)
            call = lambda p, o, b, k, lr=lr: lanes(p, o, b, k, lr)
            p, o = stack(params, n), stack(opt0, n)
        jax.block_until_ready(call(p, o, batches[0], keys[0]))  # compile
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            q, s = p, o
            for b, k in zip(batches, keys):
                q, s = call(q, s, b, k)
            jax.block_until_ready(q)
            times.append((time.perf_counter() - t) / a.steps * 1e3)
        ms = statistics.median(times)
        base = ms if n == 1 else base
        ratio = f"{base * n / ms:.2f}x" if base else "-"
        print(f"{n} | {ms:.2f} | {ms / n:.2f} | {ratio}")
        record["timing"].append({"lanes": n, "ms_per_call": ms, "ms_per_fit": ms / n, "blocks_ms": times})

    # numbers: two lanes against two single fits, same minibatches and keys
    ones = []
    for lr in lrs[:2]:
        p, o = params, optax.adam(lr).init(params)
        for b, k in zip(batches, keys):
            p, o = single(p, o, b, k, jnp.float32(lr))
        ones.append(p)
    p, o = stack(params, len(ones)), stack(opt0, len(ones))
    for b, k in zip(batches, keys):
        p, o = lanes(p, o, b, k, jnp.asarray(lrs[:2], jnp.float32))
    for i, one in enumerate(ones):
        diff = max(float(jnp.max(jnp.abs(x[i] - y))) for x, y in zip(jax.tree.leaves(p), jax.tree.leaves(one)))
        print(f"lr {lrs[i]:g}: largest parameter difference, lane against single fit, after {a.steps} steps: "
              f"{diff:.3g}")
        record["difference"][f"{lrs[i]:g}"] = diff
    if a.out:
        with open(a.out, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
