"""The meta-GAN's melody-LM generator: `models.gan.lm_generate` (inputs folded out of the loop) against the
same straight-through sampler computing every step's input inside the loop, as calling the model per step
does (embedding of the fed-back one-hot, bar position, FiLM, input projection).

    python benchmarks/gan_generator_bench.py            # the default melody LM's shape (configs/maml.py)
    python benchmarks/gan_generator_bench.py --windows=80 --reps=15

Both are the jitted gradient of a fixed linear read-out of the sample, on random weights (the cost does not
depend on their values); the two are called in turn and the median of each is printed with their ratio.
The two gradients are checked to agree first.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from metamusic.models.gan import gumbel_straight_through, lm_generate
from metamusic.models.melody_lm import LSTMLM
from metamusic.models.recurrent import GATES, _cell


def unfolded(model, params, noise, pos, bos: int):
    """The reference: every step's input computed in the loop from the fed-back one-hot (1 layer)."""
    p = params["params"]
    N, T, C = noise.shape
    emb, D = p["embed"]["embedding"], p["embed"]["embedding"].shape[1]
    film = p["context"]["embedding"][0] @ p["context_film"]["kernel"] + p["context_film"]["bias"]
    cell = p["OptimizedLSTMCell_0"]
    w_i = jnp.concatenate([cell[f"i{g}"]["kernel"] for g in GATES], -1)
    w_h = jnp.concatenate([cell[f"h{g}"]["kernel"] for g in GATES], -1)
    b = jnp.concatenate([cell[f"h{g}"]["bias"] for g in GATES], -1)

    def step(state, inp):
        h, c, y_prev = state
        n_t, q = inp
        q = jnp.clip(q, 0, model.bar_positions - 1)
        x = y_prev @ emb + p["bar_pos"]["embedding"][q] + (q == 0)[:, None] * p["bar_start"]["embedding"][0]
        x = x * (1 + film[:D]) + film[D:]
        h, c, _ = _cell(x @ w_i + b, h, c, w_h)
        logits = (h @ p["head"]["kernel"] + p["head"]["bias"])[:, :C]
        y = gumbel_straight_through(logits, n_t, 1.0)
        return (h, c, jnp.concatenate([y, jnp.zeros((N, emb.shape[0] - C))], -1)), y

    zero = jnp.zeros((N, model.hidden))
    y0 = jax.nn.one_hot(jnp.full((N,), bos), emb.shape[0])
    _, ys = jax.lax.scan(step, (zero, zero, y0), (jnp.swapaxes(noise, 0, 1), jnp.swapaxes(pos, 0, 1)))
    return jnp.swapaxes(ys, 0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=80, help="sequences (8 tasks x 10 windows in a meta-GAN step)")
    ap.add_argument("--length", type=int, default=63, help="generated steps per window")
    ap.add_argument("--reps", type=int, default=15)
    a = ap.parse_args()
    V, C, bos, N, T = 40, 38, 39, a.windows, a.length
    model = LSTMLM(vocab_size=V, embed_dim=64, hidden=64, layers=1, impl="fast", bar_positions=65, context_dim=32)
    x = jnp.zeros((1, T), jnp.int32)
    params = model.init(jax.random.PRNGKey(0), x, x)
    leaves, tree = jax.tree.flatten(params)  # non-zero context and FiLM too
    keys = jax.random.split(jax.random.PRNGKey(3), len(leaves))
    params = jax.tree.unflatten(tree, [v + 0.1 * jax.random.normal(k, v.shape) for v, k in zip(leaves, keys)])
    pos = jnp.tile(jnp.arange(T) % 16, (N, 1))
    noise = jax.random.gumbel(jax.random.PRNGKey(1), (N, T, C))
    w = jax.random.normal(jax.random.PRNGKey(2), (C,))
    fns = {"lm_generate (folded)": jax.jit(jax.grad(lambda q: (lm_generate(model, q, noise, pos, bos=bos) @ w).sum())),
           "unfolded (per-step inputs)": jax.jit(jax.grad(lambda q: (unfolded(model, q, noise, pos, bos) @ w).sum()))}
    grads = [f(params) for f in fns.values()]
    diff = max(float(jnp.abs(u - v).max()) for u, v in zip(*map(jax.tree.leaves, grads)))
    times = {k: [] for k in fns}
    for _ in range(a.reps):
        for k, f in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(f(params))
            times[k].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    print(f"{N} windows x {T} steps, jitted gradient, median of {a.reps}; gradients agree to {diff:.1e}")
    print("| sampler | ms |\n| --- | --- |")
    for k, v in med.items():
        print(f"| {k} | {v:.1f} |")
    names = list(med)
    print(f"ratio unfolded / folded: {med[names[1]] / med[names[0]]:.2f}x")


if __name__ == "__main__":
    main()
