"""Adaptation latency (K tunes -> adapted LM -> sampled melodies), relation-network episodes/s, meta-GAN steps/s.

    python benchmarks/adapt_bench.py [--impl=fast] [--out=adapt.json] [--lengths=64,256] [--sampling-only]

Latency: the library's own pieces, after compilation: `algo.adapt` (the MAML
family's inner loop, --inner-steps SGD steps on K=5 support windows of 64 tokens)
then `metamusic.models.sampling.sample_lm` (16 melodies of each --lengths, autoregressive, one
jitted loop) twice: carrying the LSTM state / the Transformer's key-value cache (linear time,
the default) and re-running the model over the whole buffer per step (quadratic, the sampler
before), on a melody LSTM (1 x 256 here, like meta_step_bench) and a Transformer (2 blocks of
128), with random weights and tokens: the cost does not depend on their values. Relation
network: training episodes/s of the classify experiment's relation outer step (5-way 5-shot, 5 queries
per class, T=64, batch 4, the default conv encoder). Meta-GAN: Reptile meta-steps/s of
configs/gan.py's own generator (gan.init=mle) and critic (meta-batch 8, 3 inner steps, R1 on). Median of --reps timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def _median_time(fn, reps):
    fn()  # compile / warm up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def adaptation(args) -> dict:
    """Adapt, then sample 16 melodies of each --lengths with the linear-time sampler (after) and the
    quadratic re-running one (before), on the LSTM and a Transformer of matching size."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from metamusic.data import EncodingConfig
    from metamusic.meta.algorithm import InnerSpec
    from metamusic.meta.registry import make_algorithm
    from metamusic.models import lm_loss, make_model
    from metamusic.models.sampling import sample_lm

    enc = EncodingConfig()
    lengths = [int(x) for x in args.lengths.split(",")]
    models = {"lstm": make_model("lstm", enc.vocab_size, embed_dim=64, hidden=args.hidden, layers=1, impl=args.impl),
              "transformer": make_model("transformer", enc.vocab_size, dim=128, layers=2, heads=4,
                                        max_len=max(lengths))}
    rng = np.random.default_rng(0)
    support = (jnp.asarray(rng.integers(2, 38, (args.shots, 64)), jnp.int32), jnp.ones((args.shots, 64)))
    prime = np.array([enc.bos], np.int32)
    out = {}
    for name, model in models.items():
        loss_fn = lambda p, b, k, model=model: lm_loss(model, p, b[0], b[1])
        algo = make_algorithm("maml", loss_fn, InnerSpec(args.inner_steps, 0.1))
        meta = algo.init(model.init(jax.random.PRNGKey(0), jnp.zeros((1, 63), jnp.int32)))
        adapt = jax.jit(lambda m, s, k, algo=algo: algo.adapt(m, s, k).params)
        out[f"{name}_adapt_ms"] = 1e3 * _median_time(
            lambda: jax.block_until_ready(adapt(meta, support, jax.random.PRNGKey(1))), args.reps)
        for length in lengths:
            for mode, incremental in (("carried", True), ("rerun", False)):
                def run(model=model, length=length, incremental=incremental):
                    params = adapt(meta, support, jax.random.PRNGKey(1))
                    return sample_lm(model, params, prime, num=16, length=length, temperature=1.0,
                                     key=jax.random.PRNGKey(2), pad=enc.pad, bos=enc.bos,
                                     vocab_size=enc.vocab_size, incremental=incremental)

                out[f"{name}_adapt_and_sample_16x{length}_{mode}_ms"] = 1e3 * _median_time(run, args.reps)
    return out


def relation(args) -> dict:
    import jax
    import numpy as np

    import configs.relation as rel_cfg
    from metamusic.data.episodes import Episodes
    from metamusic.experiments import classify, inputs
    from metamusic.meta.outer import init_state, make_outer_step

    cfg = rel_cfg.get_config()
    exp = classify.build(cfg)  # the networks need only the encoding
    algo, tx = exp.algorithm("relation"), exp.optimizer("relation")
    state = init_state(algo, tx, exp.init_params())
    step = make_outer_step(algo, tx)
    B, N, K, Q, T = cfg.meta.batch, cfg.data.ways, cfg.data.shots, cfg.data.queries, cfg.data.length
    rng = np.random.default_rng(0)
    tok = lambda n: rng.integers(2, 38, (B, n, T)).astype(np.int32)
    lab = lambda n: np.tile(np.repeat(np.arange(N), n), (B, 1)).astype(np.int32)
    pos = lambda n: np.tile(np.arange(T, dtype=np.int32) % 16, (B, n, 1))  # 4/4 bar positions
    ep = inputs.to_device(Episodes(tok(N * K), np.ones((B, N * K, T), np.float32), lab(K),
                                tok(N * Q), np.ones((B, N * Q, T), np.float32), lab(Q),
                                np.tile(np.arange(N, dtype=np.int32), (B, 1)), pos(N * K), pos(N * Q)))
    box = [state]

    def run():
        box[0], m = step(box[0], ep, jax.random.PRNGKey(0))
        jax.block_until_ready(m["loss"])

    return {"relation_episodes_per_s": B / _median_time(run, max(args.reps, 20))}


def gan(args) -> dict:
    """Meta-GAN (Reptile, default configs/gan.py networks) meta-steps/s on a meta-batch of random windows."""
    import types

    import jax
    import numpy as np

    import configs.gan as gan_cfg
    from metamusic.data import EncodingConfig
    from metamusic.data.episodes import Tasks
    from metamusic.experiments import inputs
    from metamusic.experiments import gan as gan_exp
    from metamusic.meta.outer import init_state, make_outer_step

    cfg = gan_cfg.get_config()
    # the GAN's own LSTM (model.generator): the default generator, the melody LM of a run_maml.py workdir,
    # needs that run on disk; its training speed is in the meta-GAN run's phase timings (docs/results_gan.md) instead
    cfg.gan.init = "mle"
    exp = gan_exp.build(cfg, types.SimpleNamespace(enc=EncodingConfig()))  # the networks need only the encoding
    algo, tx = exp.algorithm("reptile"), exp.optimizer("reptile")
    state = init_state(algo, tx, exp.init_params())
    step = make_outer_step(algo, tx)
    B, K, Q, T = cfg.meta.batch, cfg.data.shots, cfg.data.queries, cfg.data.length
    rng = np.random.default_rng(0)
    pos = lambda n: np.tile(np.arange(T, dtype=np.int32) % 16, (B, n, 1))  # 4/4 bar positions
    tasks = inputs.to_task(Tasks(rng.integers(2, 38, (B, K, T)).astype(np.int32), np.ones((B, K, T), np.float32),
                              rng.integers(2, 38, (B, Q, T)).astype(np.int32), np.ones((B, Q, T), np.float32),
                              np.zeros(B, np.int32), pos(K), pos(Q)))
    box = [state]

    def run():
        box[0], m = step(box[0], tasks, jax.random.PRNGKey(0))
        jax.block_until_ready(m["loss"])

    return {"gan_reptile_meta_steps_per_s": 1.0 / _median_time(run, args.reps), "gan_meta_batch": B}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", default="fast", help="LSTM implementation: fast (the default of the configs) or flax")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--inner-steps", type=int, default=5)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--lengths", default="64,256", help="sampled melody lengths, comma list")
    ap.add_argument("--sampling-only", action="store_true", help="skip the relation-network and meta-GAN figures")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    out = adaptation(args)
    if not args.sampling_only:
        out.update(relation(args), gan(args))
    print("| figure | value |\n| --- | --- |")
    for name, desc in (("lstm", f"LSTM 1x{args.hidden} {args.impl}"), ("transformer", "Transformer 2 x 128")):
        print(f"| {desc}: adapt ({args.inner_steps} SGD steps on K={args.shots} x 64 tokens) "
              f"| {out[f'{name}_adapt_ms']:.1f} ms |")
        for length in args.lengths.split(","):
            new, old = (out[f"{name}_adapt_and_sample_16x{length}_{m}_ms"] for m in ("carried", "rerun"))
            print(f"| {desc}: adapt + sample 16 x {length} tokens, state carried (after) / re-run (before) "
                  f"| {new:.0f} / {old:.0f} ms ({old / new:.1f}x) |")
    if not args.sampling_only:
        print(f"| relation network, 5-way 5-shot training episodes/s | {out['relation_episodes_per_s']:.1f} |")
        print(f"| meta-GAN (Reptile, configs/gan.py) meta-steps/s, {out['gan_meta_batch']} tasks each "
              f"| {out['gan_reptile_meta_steps_per_s']:.2f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(out, args=vars(args), date=time.strftime("%Y-%m-%d")), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
