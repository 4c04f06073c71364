"""The fast LSTM layer: same parameters and outputs as Flax's OptimizedLSTMCell, and exact first- and
second-order derivatives (second-order MAML differentiates through its custom backward pass)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metamusic.models import make_model
from metamusic.models.recurrent import lstm

V, E, H, T = 12, 4, 6, 9


def _models(layers=1):
    kw = dict(embed_dim=E, hidden=H, layers=layers)
    return make_model("lstm", V, **kw), make_model("lstm", V, impl="fast", **kw)


def _tokens(seed, n=3):
    return jax.random.randint(jax.random.PRNGKey(seed), (n, T), 0, V)


def _nll(model, params, tokens):
    """Next-token NLL in the params' dtype (lm_loss computes in float32)."""
    logp = jax.nn.log_softmax(model.apply(params, tokens[:, :-1]))
    return -jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1).mean()


def _maml_loss(model, lr=0.5, steps=2):
    """Query loss after `steps` SGD steps on the support set: its gradient is second order."""
    support, query = _tokens(1), _tokens(2)

    def f(params):
        for _ in range(steps):
            g = jax.grad(lambda p: _nll(model, p, support))(params)
            params = jax.tree.map(lambda p, d: p - lr * d, params, g)
        return _nll(model, params, query)

    return f


def _max_rel(a, b):
    return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(jnp.abs(x - y).max() / (jnp.abs(y).max() + 1e-12)),
                                            a, b)))


def test_same_parameters_and_outputs_as_flax_cell():
    flax_m, fast_m = _models(layers=2)
    x = _tokens(0)
    p_flax, p_fast = flax_m.init(jax.random.PRNGKey(0), x), fast_m.init(jax.random.PRNGKey(0), x)
    assert jax.tree.structure(p_flax) == jax.tree.structure(p_fast)
    assert jax.tree.map(jnp.shape, p_flax) == jax.tree.map(jnp.shape, p_fast)
    jax.tree.map(np.testing.assert_array_equal, p_flax, p_fast)  # same initialization too
    np.testing.assert_allclose(fast_m.apply(p_flax, x), flax_m.apply(p_flax, x), atol=1e-6)


def test_first_and_second_order_gradients_match_flax():
    flax_m, fast_m = _models()
    params = flax_m.init(jax.random.PRNGKey(3), _tokens(0))
    x = _tokens(0)
    g_flax = jax.grad(lambda p: _nll(flax_m, p, x))(params)
    g_fast = jax.grad(lambda p: _nll(fast_m, p, x))(params)
    assert _max_rel(g_fast, g_flax) < 1e-5
    m_flax = jax.grad(_maml_loss(flax_m))(params)
    m_fast = jax.grad(_maml_loss(fast_m))(params)
    assert _max_rel(m_fast, m_flax) < 1e-4


@pytest.mark.slow  # 40 s; the second-order gradient is also checked against the Flax cell in the default run
def test_second_order_meta_gradient_matches_finite_differences_in_float64():
    with jax.enable_x64(True):
        _, fast_m = _models()
        params = jax.tree.map(lambda p: p.astype(jnp.float64), fast_m.init(jax.random.PRNGKey(4), _tokens(0)))
        f = _maml_loss(fast_m)
        grad = jax.grad(f)(params)
        leaves, tree = jax.tree.flatten(params)
        keys = jax.random.split(jax.random.PRNGKey(5), len(leaves))
        direction = jax.tree.unflatten(tree, [jax.random.normal(k, x.shape, jnp.float64) for k, x in zip(keys, leaves)])
        eps = 1e-5
        shifted = lambda s: jax.tree.map(lambda p, d: p + s * eps * d, params, direction)
        fd = (f(shifted(1.0)) - f(shifted(-1.0))) / (2 * eps)
        analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(direction)))
        np.testing.assert_allclose(float(analytic), float(fd), rtol=1e-6)


def test_custom_backward_accepts_cotangents_of_cell_states_and_gates():
    """The outer derivative of the backward pass sends cotangents to all three outputs."""
    from metamusic.models.recurrent import recurrence

    def plain(xg, w_h):  # the same loop, differentiated by JAX
        B, Hh = xg.shape[1], w_h.shape[0]

        def step(carry, x_t):
            h, c = carry
            z = x_t + h @ w_h
            i, f, g, o = jnp.split(z, 4, axis=-1)
            i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
            c = f * c + i * g
            h = o * jnp.tanh(c)
            return (h, c), (h, c, jnp.concatenate([i, f, g, o], -1))

        z0 = jnp.zeros((B, Hh))
        return jax.lax.scan(step, (z0, z0), xg)[1]

    k = jax.random.split(jax.random.PRNGKey(6), 5)
    xg, w_h = jax.random.normal(k[0], (T, 2, 4 * H)), 0.3 * jax.random.normal(k[1], (H, 4 * H))
    cts = (jax.random.normal(k[2], (T, 2, H)), jax.random.normal(k[3], (T, 2, H)),
           jax.random.normal(k[4], (T, 2, 4 * H)))
    got = jax.vjp(recurrence, xg, w_h)[1](cts)
    want = jax.vjp(plain, xg, w_h)[1](cts)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    hs = lstm(jnp.ones((2, T, 3)), jnp.ones((3, 4 * H)) * 0.1, w_h, jnp.zeros(4 * H))
    assert hs.shape == (2, T, H)


def test_backward_loop_vjp_matches_autodiff_of_the_same_loop():
    """The hand-written VJP of the reverse loop (what second-order MAML differentiates) against JAX's
    own derivative of that loop, for the kernel and every per-step input."""
    from metamusic.models.recurrent import _reverse_loop, backward_loop

    k = jax.random.split(jax.random.PRNGKey(8), 8)
    B = 2
    w_ht = 0.3 * jax.random.normal(k[0], (4 * H, H))
    acts = jnp.concatenate([jax.nn.sigmoid(jax.random.normal(k[1], (T, B, 2 * H))),
                            jnp.tanh(jax.random.normal(k[2], (T, B, H))),
                            jax.nn.sigmoid(jax.random.normal(k[3], (T, B, H)))], -1)
    cs = jax.random.normal(k[4], (T, B, H))
    inputs = (jax.random.normal(k[5], (T, B, H)), jax.random.normal(k[6], (T, B, H)),
              jax.random.normal(k[7], (T, B, 4 * H)), cs, jnp.concatenate([jnp.zeros_like(cs[:1]), cs[:-1]]), acts)
    ct = jax.random.normal(jax.random.PRNGKey(9), (T, B, 4 * H))
    got_out, got_vjp = jax.vjp(backward_loop, w_ht, inputs)
    want_out, want_vjp = jax.vjp(lambda w, i: _reverse_loop(w, i, keep_carries=False), w_ht, inputs)
    np.testing.assert_allclose(got_out, want_out, rtol=1e-6, atol=1e-6)
    got, want = got_vjp(ct), want_vjp(ct)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert float(jnp.abs(got[0]).max()) > 1e-2  # the kernel's cotangent is not trivially zero
