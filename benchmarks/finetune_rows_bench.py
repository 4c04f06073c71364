"""What the fine-tuning rows (pretrain+finetune, contrastive+finetune) cost per episode, four ways side by side.

    python benchmarks/finetune_rows_bench.py [--episodes=4] [--shots=5] [--out=F]

The rows fine-tune the whole encoder on each episode's support set (`episodic.finetune_scores`: 10 Adam
steps), so every episode has its own encoder weights. On configs/relation.py's default shapes (the conv
encoder, 5-way, 5 queries per class, T=256) with the pretraining head's initial params and random tokens
(the cost does not depend on their values), one call over `--episodes` episodes is timed after a first call
that compiles it:
  vmap, loop      every episode of a call under vmap, the Adam steps a while loop (the form before the
                  steps were unrolled);
  lax.map         the episodes one after another inside one call (a while loop over episodes), steps unrolled;
  vmap, unrolled  every episode under vmap, steps unrolled;
  per call        one compiled call per episode, steps unrolled: `ClassifyParts.predictor`, what the
                  evaluation runs.
Prints seconds per episode and each arm's speed relative to the first, and checks that the arms predict the
same labels.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=4, help="episodes per timed call")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--out", default="", help="also write the figures as JSON here")
    args = ap.parse_args(argv)

    import json

    import jax
    import numpy as np

    import configs.relation as rel_cfg
    from metamusic.data.episodes import Episodes
    from metamusic.experiments import classify, inputs
    from metamusic.meta import episodic

    print(f"# {jax.devices()[0].device_kind}, {jax.device_count()} device(s), jax {jax.__version__}")
    cfg = rel_cfg.get_config()
    cfg.meta.algorithm = "pretrain"
    exp = classify.build(cfg)
    params = exp.init_params()
    parts, ways, T, n = exp.parts.heads, cfg.data.ways, cfg.data.length, args.episodes
    rng = np.random.default_rng(0)
    ns, nq = ways * args.shots, ways * cfg.data.queries
    tokens = lambda m: rng.integers(1, exp.enc.num_classes, size=(n, m, T)).astype(np.int32)
    pos = lambda m: np.tile(np.arange(T, dtype=np.int32) % 16, (n, m, 1))
    eps = Episodes(tokens(ns), np.ones((n, ns, T), np.float32), np.tile(np.repeat(np.arange(ways), args.shots), (n, 1)),
                   tokens(nq), np.ones((n, nq, T), np.float32), np.tile(np.repeat(np.arange(ways), cfg.data.queries),
                                                                          (n, 1)),
                   np.tile(np.arange(ways), (n, 1)), pos(ns), pos(nq))
    d = inputs.to_device(eps)

    def labels(unroll):
        score = functools.partial(episodic.finetune_scores, unroll=unroll)
        return lambda p, e: score(parts, p, e, ways).argmax(-1)

    arms = {
        "vmap, loop": jax.jit(jax.vmap(labels(False), in_axes=(None, 0))),
        "lax.map": jax.jit(lambda p, e: jax.lax.map(lambda one: labels(True)(p, one), e)),
        "vmap, unrolled": jax.jit(jax.vmap(labels(True), in_axes=(None, 0))),
        "per call": exp.parts.predictor("pretrain+finetune", ways),
    }
    out = {"episodes": n, "shots": args.shots, "arms": {}}
    preds = {}
    print(f"| arm | compile + first call (s) | timed call (s) | s per episode | vs {next(iter(arms))} |")
    print("| --- | --- | --- | --- | --- |")
    for name, fn in arms.items():
        t0 = time.perf_counter()
        jax.block_until_ready(fn(params, d))
        t1 = time.perf_counter()
        preds[name] = np.asarray(jax.block_until_ready(fn(params, d)))
        t2 = time.perf_counter()
        per = (t2 - t1) / n
        base = out["arms"][next(iter(arms))]["s_per_episode"] if out["arms"] else per
        out["arms"][name] = {"first_call_s": round(t1 - t0, 2), "timed_s": round(t2 - t1, 2),
                             "s_per_episode": round(per, 3), "speedup": round(base / per, 2)}
        print(f"| {name} | {t1 - t0:.1f} | {t2 - t1:.1f} | {per:.2f} | {base / per:.1f}x |", flush=True)
    ref = preds["per call"]
    out["same_labels_as_per_call"] = {k: float(np.mean(v == ref)) for k, v in preds.items()}
    print("share of query labels equal to the per-call arm's:",
          ", ".join(f"{k} {v:.3f}" for k, v in out["same_labels_as_per_call"].items()))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
