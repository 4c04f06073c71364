"""Generator and critic for melody tokens (the meta-GAN's two networks).

Why these choices. Melody tokens are discrete, so a generator that samples them
gives the critic nothing to differentiate through. We follow the relaxed route
(Jang et al. 2017; Kusner & Hernandez-Lobato 2016): the generator is a recurrent
LM whose next-token distribution at each step is sampled with Gumbel noise, and
the *straight-through* estimator passes the exact one-hot sample forward (so the
critic always sees real-looking one-hot sequences, never soft blends it could
spot) while gradients flow through the tempered softmax. The sampled one-hot is
fed back as the next input through the embedding matrix, so the whole free-running
sequence is one differentiable `lax.scan`. With the Gumbel noise at temperature 1
the forward pass is an exact ancestral sample of the generator's distribution, so
generation at evaluation time uses the same code path.

The same recurrence runs teacher-forced on real tunes (`tokens=`, scored by `masked_nll`): that
likelihood term is the stabilizer SeqGAN and its successors rely on for discrete
GANs (config `gan.mle_weight`); with it at 0 the generator is trained by the
critic alone.

The critic is convolutional over one-hot sequences: local melodic shapes are what
distinguish styles (the relation network found the same), it parallelizes over time,
and it has no normalization layers, which keeps gradient penalties well defined
and per-example (WGAN-GP forbids batch norm).

Tokens: the generator emits only melody classes 0..num_classes-1 (no-event,
note-off, pitches); PAD and BOS are never sampled. The critic's inputs are one-hot
vectors over those classes, zero where a real window has padding or BOS.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from metamusic.models.losses import masked_mean, token_nll


def gumbel_straight_through(logits, noise, tau: float):
    """Hard one-hot of argmax(logits + noise) forward; gradient of softmax((logits + noise) / tau) backward."""
    y = logits + noise
    soft = jax.nn.softmax(y / tau, axis=-1)
    hard = jax.nn.one_hot(jnp.argmax(y, axis=-1), logits.shape[-1], dtype=soft.dtype)
    return hard + soft - jax.lax.stop_gradient(soft)


def lm_generate(model, params, noise, pos=None, *, bos: int, tau: float = 1.0, forced=None, n_forced: int = 0):
    """A free-running straight-through sample of a melody LM (`models.melody_lm.LSTMLM`): the meta-GAN's
    generator when it *is* the jointly trained melody model (`gan.init="melody"`).

    The LM runs from BOS one step at a time; each step's logits over the melody classes (PAD and BOS never
    drawn) are sampled by Gumbel-max with the straight-through gradient of `gumbel_straight_through`, and
    the one-hot is fed back as the next input. The forward pass is an exact ancestral sample of the LM, the
    distribution `sample_lm` draws from (tested: each drawn token is the argmax of the LM's own logits, by
    `model.apply`, plus the noise). Evaluation samples at other temperatures with `sample_lm` itself.

    It reads the LM's parameters directly: the first layer's input is linear in (token, bar position) under
    the context's FiLM, so the token part folds into one [C, 4H] table and the position part into one matmul
    before the loop. The folding is not for speed: on XLA:CPU it ran no faster than the same sampler computing
    each step's input inside the loop (`benchmarks/gan_generator_bench.py` compares the two;
    docs/design_notes.md#gan-generator-folding). The two agree only to float rounding, which a GAN's training
    amplifies, so replacing it changes trained meta-GANs and calls for re-running the meta-GAN results
    (docs/results_gan.md).

    Args:
      noise: Gumbel noise [N, T, C] (C = melody classes, fewer than the LM's vocabulary).
      pos: int [N, T] bar position of each drawn token (what the LM reads at the step that draws it), or None
        for an LM without the position channel.
      forced, n_forced: one-hot [N, T, C] of real tokens; the first `n_forced` steps emit (and feed back)
        these instead of a draw, so the LM reads a real prefix teacher-forced and free-runs after it
        (`gan.prefix`: fakes conditioned like the real windows they are compared with).
    Returns:
      one-hot [N, T, C] (straight-through; the forced steps are the constants given).
    """
    from metamusic.models.recurrent import GATES, _cell  # (one cell for every LSTM of the project)

    N, T, C = noise.shape
    p = params["params"]
    emb = p["embed"]["embedding"]
    D = emb.shape[1]
    gamma, beta = jnp.zeros(D), jnp.zeros(D)
    if model.context_dim:
        film = p["context"]["embedding"][0] @ p["context_film"]["kernel"] + p["context_film"]["bias"]
        gamma, beta = film[:D], film[D:]
    cells = [p[f"OptimizedLSTMCell_{i}"] for i in range(model.layers)]
    w_i = [jnp.concatenate([c[f"i{g}"]["kernel"] for g in GATES], -1) for c in cells]
    w_h = [jnp.concatenate([c[f"h{g}"]["kernel"] for g in GATES], -1) for c in cells]
    b = [jnp.concatenate([c[f"h{g}"]["bias"] for g in GATES], -1) for c in cells]
    tok_in = (emb[:C] * (1 + gamma)) @ w_i[0]  # a drawn one-hot's input projection: y @ tok_in
    bos_in = (emb[bos] * (1 + gamma)) @ w_i[0]
    extra = jnp.zeros((T, N, D))
    if model.bar_positions:
        q = jnp.clip(jnp.swapaxes(pos, 0, 1), 0, model.bar_positions - 1)
        extra = p["bar_pos"]["embedding"][q] + (q == 0)[..., None] * p["bar_start"]["embedding"][0]
    step_in = (extra * (1 + gamma) + beta) @ w_i[0] + b[0]  # [T, N, 4H]: the rest of the first layer's input
    out_film = None
    if model.context_output:
        H = w_h[-1].shape[0]
        f = p["context"]["embedding"][0] @ p["context_film_out"]["kernel"] + p["context_film_out"]["bias"]
        out_film = (f[:H], f[H:])

    def step(state, inp):
        hcs, x0 = state
        n_t, s_t, f_t, t = inp
        new, x = [], x0 + s_t
        for layer, (h, c) in enumerate(hcs):
            if layer:
                x = x @ w_i[layer] + b[layer]
            h, c, _ = _cell(x, h, c, w_h[layer])
            new.append((h, c))
            x = h
        if out_film is not None:
            x = x * (1 + out_film[0]) + out_film[1]
        logits = (x @ p["head"]["kernel"] + p["head"]["bias"])[:, :C]
        y = gumbel_straight_through(logits, n_t, tau)
        if n_forced:
            y = jnp.where(t < n_forced, f_t, y)
        return (tuple(new), y @ tok_in), y

    zero = jnp.zeros((N, model.hidden), noise.dtype)
    init = (tuple((zero, zero) for _ in cells), jnp.broadcast_to(bos_in, (N, bos_in.shape[-1])))
    f = jnp.swapaxes(forced, 0, 1) if n_forced else jnp.zeros((T, 0))
    _, ys = jax.lax.scan(step, init, (jnp.swapaxes(noise, 0, 1), step_in, f, jnp.arange(T)))
    return jnp.swapaxes(ys, 0, 1)


class Generator(nn.Module):
    """LSTM generator conditioned on a noise vector z (initial state), emitting `classes` tokens.

    `vocab_size` input symbols (classes + PAD + BOS) are embedded; the first input
    is BOS. One set of parameters serves free-running sampling and teacher forcing.
    """

    vocab_size: int
    classes: int
    bos: int
    embed_dim: int = 64
    hidden: int = 128
    z_dim: int = 32
    context_dim: int = 0  # a style context that joins z in setting the initial state (0: none)
    unroll: int = 1  # scan steps unrolled per loop iteration (CPU loop overhead dominates small steps)

    def setup(self):
        H = self.hidden
        if self.context_dim:
            # zeros: an unconditioned generator ignores it; the amortized meta-GAN sets it from the support set
            self.context = self.param("context", nn.initializers.zeros, (1, self.context_dim))
        self.embed = self.param("embed", nn.initializers.normal(0.1), (self.vocab_size, self.embed_dim))
        self.z_proj = nn.Dense(2 * H, name="z_proj")
        self.w_in = self.param("w_in", nn.initializers.lecun_normal(), (self.embed_dim, 4 * H))
        self.w_rec = self.param("w_rec", nn.initializers.orthogonal(), (H, 4 * H))
        # forget-gate bias 1 (Jozefowicz et al. 2015): remembers from the start of training
        self.b = self.param("b", lambda k, s: jnp.zeros(s).at[H:2 * H].set(1.0), (4 * H,))
        # raw arrays rather than nn.Dense: they are used inside lax.scan bodies
        self.w_out = self.param("w_out", nn.initializers.lecun_normal(), (H, self.classes))
        self.b_out = self.param("b_out", nn.initializers.zeros, (self.classes,))

    def _head(self, h):
        return h @ self.w_out + self.b_out

    def _init_state(self, z):
        if self.context_dim:
            z = jnp.concatenate([z, jnp.broadcast_to(self.context, (z.shape[0], self.context_dim))], -1)
        h, c = jnp.split(jnp.tanh(self.z_proj(z)), 2, axis=-1)
        return h, c

    def _cell(self, h, c, x_proj):
        gates = x_proj + h @ self.w_rec + self.b
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return h, c

    def __call__(self, z, noise, tau: float = 1.0, tokens=None, temperature: float = 1.0, forced=None,
                 n_forced: int = 0):
        """Free-running sample, and optionally teacher-forced logits from the same scan.

        z [N, z_dim], noise [N, T, classes] (Gumbel) -> one-hot [N, T, classes]: exact
        one-hots forward (tokens = argmax), straight-through gradients. With `tokens`
        [N, T] (a real window), also returns logits [N, T, classes] predicting tokens[:, t]
        from BOS, tokens[:, :t]: both row sets share one recurrence (one sequential
        loop instead of two, which is what the CPU time of this model goes to).
        `temperature` divides the logits before the Gumbel-max draw (sampling at another
        temperature, for the quality-diversity sweep of the evaluation).
        """
        N, T = noise.shape[:2]
        H = self.hidden
        h, c = self._init_state(z)
        bos_proj = self.embed[self.bos] @ self.w_in
        emit_proj = self.embed[: self.classes] @ self.w_in  # next input of a sampled row: onehot @ (E W_in)
        x0 = jnp.broadcast_to(bos_proj, (N, 4 * H))
        teacher = tokens is not None
        if teacher:
            h, c = jnp.concatenate([h, h]), jnp.concatenate([c, c])
            prev = jnp.concatenate([jnp.full((N, 1), self.bos, tokens.dtype), tokens[:, :-1]], axis=1)
            tf_proj = jnp.swapaxes(self.embed[prev] @ self.w_in, 0, 1)  # input projection hoisted: [T, N, 4H]
        else:
            tf_proj = jnp.zeros((T, 0, 4 * H))

        def step(carry, inp):
            h, c, xp = carry
            n_t, tf_t, f_t, t = inp
            h, c = self._cell(h, c, jnp.concatenate([xp, tf_t]) if teacher else xp)
            logits = self._head(h)
            y = gumbel_straight_through(logits[:N] / temperature, n_t, tau)
            if n_forced:
                y = jnp.where(t < n_forced, f_t, y)
            return (h, c, y @ emit_proj), (y, logits[N:])

        f = jnp.swapaxes(forced, 0, 1) if n_forced else jnp.zeros((T, 0))
        _, (ys, tf_logits) = jax.lax.scan(step, (h, c, x0), (jnp.swapaxes(noise, 0, 1), tf_proj, f, jnp.arange(T)),
                                          unroll=self.unroll)
        ys = jnp.swapaxes(ys, 0, 1)
        return (ys, jnp.swapaxes(tf_logits, 0, 1)) if teacher else ys

    def teacher_forced(self, z, tokens):
        """Logits [N, T, classes] predicting tokens[:, t] from BOS, tokens[:, :t] (no sampling): the
        maximum-likelihood pre-training of the generator needs only this half of `__call__`."""
        h, c = self._init_state(z)
        prev = jnp.concatenate([jnp.full((tokens.shape[0], 1), self.bos, tokens.dtype), tokens[:, :-1]], axis=1)
        xs = jnp.swapaxes(self.embed[prev] @ self.w_in, 0, 1)

        def step(carry, x):
            h, c = self._cell(*carry, x)
            return (h, c), self._head(h)

        _, logits = jax.lax.scan(step, (h, c), xs, unroll=self.unroll)
        return jnp.swapaxes(logits, 0, 1)


def receptive_field(layers: int, kernel: int, dilated: bool) -> int:
    """Steps of input one position of the critic's last conv layer sees."""
    return 1 + (kernel - 1) * ((2 ** layers - 1) if dilated else layers)


def masked_nll(logits, tokens, mask, classes: int):
    """Mean NLL of tokens under logits [N, T, classes] where mask is 1 and the token is a melody class."""
    return masked_mean(token_nll(logits, jnp.minimum(tokens, classes - 1)), mask * (tokens < classes))


class Critic(nn.Module):
    """1-D convolutional critic over one-hot sequences [N, T, classes] -> one score per sequence.

    With `dilated`, conv layer i has dilation 2**i, so the receptive field grows to 1 + (kernel-1)(2**layers - 1)
    steps (4 layers of width 5: 61 steps, about four 4/4 bars at 16 steps per bar) instead of
    1 + (kernel-1) layers (13 steps, less than a bar): what an LSTM melody model gets wrong is more likely
    phrase repetition, cadences and form than the local statistics it already matches."""

    dim: int = 64
    layers: int = 3
    kernel: int = 5
    dilated: bool = False
    context_dim: int = 0  # a style context read by projection (Miyato & Koyama 2018); 0: none
    # bar-position codes read beside the tokens (0: none). Real and generated windows carry the same
    # positions (a fake reads its real window's), so what the critic can learn is which tokens fall where
    bar_positions: int = 0

    @nn.compact
    def __call__(self, x, mask, pos=None):
        """x [N, T, C] one-hot (or relaxed); mask [N, T] 1 on real steps; pos [N, T] bar positions (read
        when bar_positions > 0) -> scores [N]."""
        h = nn.Dense(self.dim, use_bias=False, name="embed")(x)  # = an embedding lookup for one-hots
        if self.bar_positions:
            h = h + nn.Embed(self.bar_positions, self.dim, name="bar_pos")(jnp.clip(pos, 0, self.bar_positions - 1))
        for i in range(self.layers):
            rate = 2 ** i if self.dilated else 1
            h = nn.leaky_relu(nn.Conv(self.dim, (self.kernel,), kernel_dilation=rate, name=f"conv_{i}")(h), 0.2)
        m = mask[..., None]
        pooled = (h * m).sum(-2) / jnp.maximum(m.sum(-2), 1.0)
        feats = jnp.concatenate([pooled, jnp.max(jnp.where(m > 0, h, -1e4), axis=-2)], -1)
        h = nn.leaky_relu(nn.Dense(self.dim, name="fc")(feats), 0.2)
        out = nn.Dense(1, name="out")(h)[..., 0]
        if self.context_dim:
            # projection critic: the score gains <h, W context>, so "real for this style" is learnable
            ctx = self.param("context", nn.initializers.zeros, (1, self.context_dim))
            out = out + (h * nn.Dense(self.dim, use_bias=False, name="context_proj")(ctx)).sum(-1)
        return out
