"""Classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017): how far a generator's melodies are from real
tunes, in a way a critic can see.

A GAN's own critic is a poor witness of its generator: it is trained alongside, penalised, and may stay at
chance because it cannot learn (not because the fakes are good). So every generator is also judged by a
fresh critic: the generator is frozen, a new critic (the meta-GAN's convolutional architecture, dilated so
it sees about four bars, no gradient penalty) is trained to tell its melodies from real tunes of the same
styles, and its accuracy on held-out examples (k-fold cross-fitting: each example is scored by the critic
that did not train on it) is the statistic. 0.5 means the critic finds nothing; 1.0 that every melody
gives itself away. Accuracies of two generators against the same real tunes compare them.

Real and generated examples are made alike in everything but the music: both are tune openings (the
generators draw from BOS, so real windows are the first steps of held-out tunes, never random crops),
and each generated melody takes the length (padding) of the real opening it is paired with.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import optax

from metamusic.models.gan import Critic


def openings(corpus, style: str, length: int, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """The first `length` melody steps (after BOS) of up to `n` tunes of `style`'s query pool (the tunes
    no method adapts on): tokens int32 [m, length], valid float32 [m, length] (0 past a tune's end)."""
    idx = np.flatnonzero((corpus.style_of == corpus.style_index(style)) & (corpus.pool == 1))
    idx = idx[rng.permutation(len(idx))[:n]]
    starts, ends = corpus.offsets[idx] + 1, corpus.offsets[idx + 1]
    pos = starts[:, None] + np.arange(length)
    valid = pos < ends[:, None]
    tok = np.where(valid, corpus.tokens[np.where(valid, pos, 0)], corpus.enc.pad).astype(np.int32)
    return tok, valid.astype(np.float32)


def wilson(correct: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (sound near 0 and 1, unlike the normal one)."""
    if n == 0:
        return float("nan"), float("nan")
    z, p = 1.96, correct / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return mid - half, mid + half


def test(real: np.ndarray, real_valid: np.ndarray, fake: np.ndarray, classes: int, seed: int = 0, *,
         folds: int = 4, steps: int = 150, batch: int = 128, lr: float = 2e-3, dim: int = 32, layers: int = 4,
         kernel: int = 5) -> dict:
    """Held-out accuracy of fresh critics telling `real` from `fake` melodies.

    Args:
      real: int [n, T] class tokens of real tunes; real_valid: float [n, T] 1 on their steps.
      fake: int [n, T] generated class tokens, paired row by row with `real` (each takes its real row's
        valid steps, so length is no cue).
      classes: melody classes (the one-hot width); tokens >= classes are read as empty steps.
      folds: cross-fitting folds (each critic trains on folds-1 of them, scores the rest).
      steps, batch: Adam steps per critic on minibatches of its training folds (no gradient penalty, no
        early stopping: it is the test's critic, not a player).
    Returns:
      {"accuracy", "ci95": (lo, hi) Wilson, "n": examples scored, "fold_accuracy": [...]}.
    """
    n = len(real)
    if n < folds or len(fake) != n:
        raise ValueError(f"need as many fakes as real tunes and at least {folds} of each (got {n}, {len(fake)})")
    valid = np.concatenate([real_valid, real_valid]).astype(np.float32)
    tok = np.concatenate([real, fake]).astype(np.int32)
    x = jax.nn.one_hot(tok, classes) * (valid * (tok < classes))[..., None]
    y = np.concatenate([np.ones(n), np.zeros(n)]).astype(np.float32)
    rng = np.random.default_rng([seed, 31])
    fold = np.concatenate([rng.permutation(n) % folds, rng.permutation(n) % folds])  # stratified
    critic = Critic(dim=dim, layers=layers, kernel=kernel, dilated=True)
    tx = optax.adam(lr)
    x = np.asarray(x)

    def loss(p, x, valid, y):
        s = critic.apply(p, x, valid)
        return (y * jax.nn.softplus(-s) + (1 - y) * jax.nn.softplus(s)).mean()

    # One jitted step called from Python: the same step inside lax.scan ran about 50 times slower on
    # XLA:CPU (convolutions in a while loop), and vmapping the folds made grouped convolutions, slower still.
    @jax.jit
    def step(p, o, x, valid, y):
        u, o = tx.update(jax.grad(loss)(p, x, valid, y), o, p)
        return optax.apply_updates(p, u), o

    scores = jax.jit(critic.apply)
    right = count = 0
    fold_acc = []
    for f in range(folds):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        params = critic.init(jax.random.PRNGKey(seed * 100 + f), x[:1], valid[:1])
        opt = tx.init(params)
        for _ in range(steps):
            i = tr[rng.integers(0, len(tr), batch)]
            params, opt = step(params, opt, x[i], valid[i], y[i])
        ok = np.asarray(scores(params, x[te], valid[te]) > 0) == (y[te] > 0)
        right, count = right + int(ok.sum()), count + len(te)
        fold_acc.append(float(ok.mean()))
    lo, hi = wilson(right, count)
    return {"accuracy": right / count, "ci95": (lo, hi), "n": count, "fold_accuracy": fold_acc}
