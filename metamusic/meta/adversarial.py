"""Adversarial meta-learning: a GAN's two players as one loss the meta core already knows.

A GAN is a two-player game, but every algorithm in `metamusic.meta` takes one
`loss_fn(params, batch, key)` and a params pytree. `make_loss` bridges that with
stop-gradients: params = {"g": generator, "d": critic} and

    loss = d_loss(d, stop_gradient(fake)) + g_loss(g, critic with stop_gradient(d))

so d/d(d) of the sum is exactly the critic's gradient and d/d(g) exactly the
generator's. One SGD step on it is one simultaneous GAN step, and with per-player
learning rates (a pytree `lrs` for `inner.adapt`) the usual two-timescale update.
That is what lets the meta-GAN reuse the project's meta core, not copy it:

  * FIGR (Clouatre & Demers 2019) = `reptile` on this loss: adapt both players on a
    style's tunes by GAN steps, move both initializations toward the adapted ones;
  * DAWSON (Liang et al. 2020) = `fomaml` on this loss: adapt both players on the
    support tunes, then take each player's loss gradient on the *query* tunes at the
    adapted parameters (the critic sees held-out real tunes of the style; the
    generator is scored by the adapted critic). A GAN loss has no query set of its
    own, which is why DAWSON frames it this way; like DAWSON we use first order
    (second order through the stop-gradients would drop the cross-player terms);
  * the joint GAN baseline = the joint baseline (`metamusic.baselines`) on this loss.

Losses (`kind`): "ns" non-saturating (Goodfellow et al. 2014), "hinge" (Lim & Ye
2017; Miyato et al. 2018), "wgan-gp" (Gulrajani et al. 2017, with the small drift
term of Karras et al. 2018). Stabilizers, each a named config value: gradient
penalty weight (wgan-gp), R1 penalty on real data (Mescheder et al. 2018; ns and
hinge), and a likelihood term on the generator (`mle_weight`).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from metamusic.errors import MetamusicError

KINDS = ("ns", "hinge", "wgan-gp")


ESTIMATORS = ("gumbel", "reinforce")


def _input_grad_sq(critic, d_params, x, batch, simplex: bool = False):
    """Per-example squared norm of d critic / d input. simplex: only the part tangent to the probability
    simplex of each step (the per-step mean over classes removed): one-hot inputs only ever move within it,
    so the rest of the gradient penalises what neither player can change."""
    g = jax.grad(lambda xx: critic(d_params, xx, batch).sum())(x)
    if simplex:
        g = g - g.mean(-1, keepdims=True)
    return jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=-1)


def make_loss(generate: Callable, critic: Callable, real_inputs: Callable, *, kind: str = "ns",
              gp_weight: float = 10.0, r1_weight: float = 0.0, drift: float = 1e-3,
              mle_weight: float = 0.0, adv_weight: float = 1.0, r1_simplex: bool = False,
              estimator: str = "gumbel", log_prob: Callable | None = None) -> Callable:
    """The combined GAN loss for params {"g", "d"}.

    Args:
      generate: (g_params, batch, key) -> (fake critic inputs [N, ...] (as many as real), the
        generator's NLL of the batch's real data): one call, so a recurrent generator can
        compute both in one pass. The NLL enters g_loss times `mle_weight`, the critic's verdict times
        `adv_weight` (0: the generator learns by likelihood alone, the ablation that says what the game adds).
      critic: (d_params, x, batch) -> scores [N] (higher = more real).
      real_inputs: batch -> real critic inputs [N, ...].
      r1_simplex: R1 on the input gradient's part tangent to the simplex (`_input_grad_sq`).
      estimator: how the critic's verdict reaches the generator. "gumbel": through the straight-through
        samples (`generate`'s fakes carry the gradient). "reinforce": the score-function gradient
        (SeqGAN, Yu et al. 2017; MaliGAN; ScratchGAN, de Masson d'Autume et al. 2019): the fakes are
        treated as constants, each one's reward is the critic's log D (ns) or score, the batch mean is the
        baseline, and the generator's gradient is that of mean((reward - baseline) * log p(fake)).
      log_prob: (g_params, fake, batch) -> [N] mean log-probability per free-run token of each fake under
        the generator (needed by "reinforce").
    Returns:
      loss_fn(params, batch, key) -> (d_loss + g_loss, aux) with aux holding each player's loss, the
      critic's classification loss without the penalty (`d_cls`), its accuracy on the batch (`d_acc`,
      real scored above the threshold, fakes below; 0 for ns/hinge, midway between the means for
      wgan-gp), the real-minus-fake score gap, the penalty, and the two generator terms as weighted in
      g_loss (`g_adv_term`, `g_mle_term`: `grad_norm_ratio` compares their gradients).
    """
    if kind not in KINDS:
        raise MetamusicError(f"gan.loss={kind!r} is not allowed; choose one of {list(KINDS)}")
    if estimator not in ESTIMATORS:
        raise MetamusicError(f"gan.estimator={estimator!r} is not allowed; choose one of {list(ESTIMATORS)}")
    if estimator == "reinforce" and log_prob is None:
        raise MetamusicError("gan.estimator='reinforce' needs the generator's log-probability of its samples")

    def loss_fn(params, batch, key):
        k_gen, k_mix = jax.random.split(key)
        g, d = params["g"], params["d"]
        real = real_inputs(batch)
        fake, nll = generate(g, batch, k_gen)
        fake_c = jax.lax.stop_gradient(fake)
        s_real, s_fake = critic(d, real, batch), critic(d, fake_c, batch)
        penalty = jnp.zeros(())
        if kind == "ns":
            d_cls = jax.nn.softplus(-s_real).mean() + jax.nn.softplus(s_fake).mean()
        elif kind == "hinge":
            d_cls = jax.nn.relu(1 - s_real).mean() + jax.nn.relu(1 + s_fake).mean()
        else:
            d_cls = s_fake.mean() - s_real.mean() + drift * jnp.square(s_real).mean()
            eps = jax.random.uniform(k_mix, (real.shape[0],) + (1,) * (real.ndim - 1))
            mix = eps * real + (1 - eps) * fake_c
            penalty = gp_weight * jnp.square(jnp.sqrt(_input_grad_sq(critic, d, mix, batch) + 1e-12) - 1).mean()
        if kind != "wgan-gp" and r1_weight > 0:
            penalty = 0.5 * r1_weight * _input_grad_sq(critic, d, real, batch, r1_simplex).mean()
        d_loss = d_cls + penalty
        if estimator == "gumbel":
            s_gen = critic(jax.lax.stop_gradient(d), fake, batch)
            g_adv = jax.nn.softplus(-s_gen).mean() if kind == "ns" else -s_gen.mean()
            g_obj = g_adv
        else:
            s_gen = jax.lax.stop_gradient(s_fake)
            reward = -jax.nn.softplus(-s_gen) if kind == "ns" else s_gen  # log D(x) for ns, the score otherwise
            g_adv = -reward.mean()
            surrogate = -((reward - reward.mean()) * log_prob(g, fake_c, batch)).mean()
            g_obj = g_adv + surrogate - jax.lax.stop_gradient(surrogate)  # the value of g_adv, REINFORCE's gradient
        g_loss = adv_weight * g_obj + mle_weight * nll
        t = 0.0 if kind != "wgan-gp" else jax.lax.stop_gradient(0.5 * (s_real.mean() + s_fake.mean()))
        d_acc = 0.5 * ((s_real > t).mean() + (s_fake < t).mean())
        aux = {"d_loss": d_loss, "d_cls": d_cls, "d_acc": d_acc, "gap": s_real.mean() - s_fake.mean(),
               "g_loss": g_loss, "g_adv": g_adv, "g_nll": nll, "penalty": penalty,
               "d_real": s_real.mean(), "d_fake": s_fake.mean(),
               "g_adv_term": adv_weight * g_obj, "g_mle_term": mle_weight * nll}
        return d_loss + g_loss, aux

    return loss_fn


def grad_norm_ratio(loss_fn: Callable, params, batch, key) -> jax.Array:
    """|grad_g adversarial term| / |grad_g likelihood term| at `params` (both as weighted in the generator's
    loss): how much of the generator's update the critic supplies. 0 when the adversarial term is off;
    inf-free (the likelihood norm is floored)."""
    def norm(term):
        g = jax.grad(lambda gp: loss_fn({**params, "g": gp}, batch, key)[1][term])(params["g"])
        return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(g)))

    return norm("g_adv_term") / jnp.maximum(norm("g_mle_term"), 1e-12)


def player_lrs(params, g_lr: float, d_lr: float):
    """Inner learning rates per player, a pytree matching {"g", "d"} params (for `inner.adapt`)."""
    return {"g": jax.tree.map(lambda _: g_lr, params["g"]), "d": jax.tree.map(lambda _: d_lr, params["d"])}


def player_schedule(params, g_lr: float, d_lr: float, g_steps: int, d_steps: int):
    """Inner lrs per player and step, as a schedule `steps -> {"g", "d"} pytree of [steps] vectors` (for
    `inner.adapt`): of an inner loop of any length the critic moves on its first `d_steps` steps and the
    generator on its last `g_steps` (0: every step), so the critic first adapts to the task's real windows
    and the generator then reads its adapted verdict; a player's lr is 0 on the steps it sits out."""
    def schedule(steps: int):
        i = np.arange(steps)
        d_on = i < (d_steps or steps)
        g_on = i >= steps - (g_steps or steps)
        g = jnp.asarray(g_lr * g_on, jnp.float32)
        d = jnp.asarray(d_lr * d_on, jnp.float32)
        return {"g": jax.tree.map(lambda _: g, params["g"]), "d": jax.tree.map(lambda _: d, params["d"])}

    return schedule
