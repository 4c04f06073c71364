"""What the auxiliary feature loss (meta.feature_loss) costs a classification training step, side by side.

    python benchmarks/feature_loss_bench.py [--heads=protonet,r2d2,relation] [--reps=15] [--rounds=3] [--out=F]

For each head, three outer steps of configs/relation.py's default shapes (batch 4 episodes of 5-way 5-shot,
5 queries per class, T=256, the conv encoder), on random tokens and random targets (the cost does not depend
on their values), timed in interleaved rounds:
  off        the head's own loss (meta.feature_loss=0);
  re-encoded the feature loss as first written: the head's loss, then a second `episode_features` pass for
             the target (kept here as the reference, it is not in the library);
  shared     `episodic.with_feature_loss`: one encoder pass feeds the head and the target.
Prints the median step time of each and the ratios; also checks that `shared` and `re-encoded` give the same
loss and gradients (to float summation order).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def _reencoded(loss_fn, parts, weight):
    """The feature loss before the encoder pass was shared: the head's loss, then the target's own pass."""
    import jax.numpy as jnp

    from metamusic.meta import episodic

    def loss(params, ep, key):
        value, aux = loss_fn(params, ep, key)
        s, q = episodic.episode_features(parts, params, ep)
        err = 0.5 * (jnp.mean((parts.features(params, s) - ep.support_target) ** 2)
                     + jnp.mean((parts.features(params, q) - ep.query_target) ** 2))
        return value + weight * err, {**aux, "feature_mse": err}
    return loss


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heads", default="protonet,r2d2,relation")
    ap.add_argument("--reps", type=int, default=15, help="timed steps per variant and round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the median is over all of them)")
    ap.add_argument("--out", default="", help="also write the figures as JSON here")
    args = ap.parse_args(argv)

    import json

    import jax
    import numpy as np

    import configs.relation as rel_cfg
    from metamusic.data import features
    from metamusic.data.episodes import FeatureEpisodes
    from metamusic.experiments import classify, inputs
    from metamusic.meta import direct, episodic
    from metamusic.meta.outer import init_state, make_outer_step

    print(f"# {jax.devices()[0].device_kind}, {jax.device_count()} device(s), jax {jax.__version__}")
    cfg = rel_cfg.get_config()
    B, N, K, Q, T = cfg.meta.batch, cfg.data.ways, cfg.data.shots, cfg.data.queries, cfg.data.length
    rng = np.random.default_rng(0)
    tok = lambda n: rng.integers(2, 38, (B, n, T)).astype(np.int32)
    lab = lambda n: np.tile(np.repeat(np.arange(N), n), (B, 1)).astype(np.int32)
    pos = lambda n: np.tile(np.arange(T, dtype=np.int32) % 16, (B, n, 1))
    target = lambda n: rng.standard_normal((B, n, features.FEATURE_DIM)).astype(np.float32)
    ep = inputs.to_device(FeatureEpisodes(tok(N * K), np.ones((B, N * K, T), np.float32), lab(K),
                                          tok(N * Q), np.ones((B, N * Q, T), np.float32), lab(Q),
                                          np.tile(np.arange(N, dtype=np.int32), (B, 1)), pos(N * K), pos(N * Q),
                                          target(N * K), target(N * Q)))
    key = jax.random.PRNGKey(0)
    heads = [h for h in args.heads.split(",") if h]
    out = {"device": jax.devices()[0].device_kind, "reps": args.reps, "rounds": args.rounds, "ms_per_step": {},
           "max_diff": {}}
    print("| head | off (ms/step) | re-encoded | shared | re-encoded / off | shared / off | re-encoded / shared |"
          " loss, grad max diff |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for head in heads:
        cfg.meta.algorithm = head
        cfg.meta.feature_loss = 0.0
        plain = classify.build(cfg)
        cfg.meta.feature_loss = 1.0
        exp = classify.build(cfg)
        parts = exp.parts.heads
        w = float(cfg.meta.feature_loss)
        reenc = direct.make(head, _reencoded(episodic.head_loss(head, parts, N, cfg.model.aggregate), parts, w))
        variants = {"off": (plain.algorithm(head), plain.init_params()),
                    "re-encoded": (reenc, exp.init_params()),
                    "shared": (exp.algorithm(head), exp.init_params())}
        # the same loss and gradients, shared or re-encoded (one episode)
        ep0 = jax.tree.map(lambda x: x[0], ep)
        grads = {}
        for n in ("re-encoded", "shared"):
            algo, params = variants[n]
            g, m = jax.jit(algo.task_grad, static_argnums=(4,))(algo.init(params), ep0, key, 0, "train")
            grads[n] = (float(m["loss"]), g)
        diff = max(abs(grads["re-encoded"][0] - grads["shared"][0]),
                   max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in
                       zip(jax.tree.leaves(grads["re-encoded"][1]), jax.tree.leaves(grads["shared"][1]))))
        steps, states = {}, {}
        for n, (algo, params) in variants.items():
            tx = exp.optimizer(head)
            states[n] = init_state(algo, tx, params)
            steps[n] = make_outer_step(algo, tx)
            states[n], m = steps[n](states[n], ep, key)  # compile
            jax.block_until_ready(m["loss"])
        times = {n: [] for n in variants}
        for _ in range(args.rounds):
            for n in variants:
                for _ in range(args.reps):
                    t0 = time.perf_counter()
                    states[n], m = steps[n](states[n], ep, key)
                    jax.block_until_ready(m["loss"])
                    times[n].append(time.perf_counter() - t0)
        med = {n: statistics.median(t) * 1e3 for n, t in times.items()}
        print(f"| {head} | {med['off']:.0f} | {med['re-encoded']:.0f} | {med['shared']:.0f} | "
              f"{med['re-encoded'] / med['off']:.2f}x | {med['shared'] / med['off']:.2f}x | "
              f"{med['re-encoded'] / med['shared']:.2f}x | {diff:.1e} |", flush=True)
        out["ms_per_step"][head], out["max_diff"][head] = med, diff
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
