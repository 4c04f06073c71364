"""The inner loop: a step lowers the support loss; lr pytrees and masks act as documented."""

import jax
import jax.numpy as jnp
import numpy as np

from metamusic.meta import inner


def _linreg():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(20, 3)), jnp.float32)
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.3
    params = {"w": jnp.zeros(3), "head": {"b": jnp.zeros(())}}

    def loss_fn(p, batch, key):
        xx, yy = batch
        err = jnp.mean((xx @ p["w"] + p["head"]["b"] - yy) ** 2)
        return err, {"mse": err}

    return loss_fn, params, (x, y)


def test_inner_steps_lower_the_support_loss():
    loss_fn, params, batch = _linreg()
    res = inner.adapt(loss_fn, params, batch, jax.random.PRNGKey(0), steps=5, lrs=0.1, query=batch)
    assert res.support_losses.shape == (5,) and res.query_losses.shape == (6,)
    assert np.all(np.diff(np.asarray(res.query_losses)) < 0)
    assert float(res.query_losses[-1]) < 0.5 * float(res.query_losses[0])


def test_one_step_is_sgd_with_the_given_lrs():
    loss_fn, params, batch = _linreg()
    g = jax.grad(lambda p: loss_fn(p, batch, None)[0])(params)
    lrs = {"w": jnp.array([0.1, 0.2, 0.3]), "head": {"b": jnp.array(0.5)}}  # Meta-SGD shaped
    res = inner.adapt(loss_fn, params, batch, jax.random.PRNGKey(0), steps=1, lrs=lrs)
    np.testing.assert_allclose(res.params["w"], -lrs["w"] * g["w"], rtol=1e-6)
    np.testing.assert_allclose(res.params["head"]["b"], -0.5 * g["head"]["b"], rtol=1e-6)
    per_step = {"w": jnp.array([0.1, 0.0]), "head": {"b": jnp.array([0.0, 0.2])}}  # MAML++ shaped
    res2 = inner.adapt(loss_fn, params, batch, jax.random.PRNGKey(0), steps=2, lrs=per_step, per_step_lrs=True)
    w1 = -0.1 * g["w"]
    g2 = jax.grad(lambda p: loss_fn(p, batch, None)[0])({"w": w1, "head": {"b": jnp.zeros(())}})
    np.testing.assert_allclose(res2.params["w"], w1, rtol=1e-6)  # step 2 has lr 0 for w
    np.testing.assert_allclose(res2.params["head"]["b"], -0.2 * g2["head"]["b"], rtol=1e-5)


def test_mask_freezes_parameters():
    loss_fn, params, batch = _linreg()
    mask = {"w": jnp.zeros(3), "head": {"b": jnp.ones(())}}
    res = inner.adapt(loss_fn, params, batch, jax.random.PRNGKey(0), steps=3, lrs=0.1, mask=mask)
    assert np.all(np.asarray(res.params["w"]) == 0) and float(res.params["head"]["b"]) != 0


def test_remat_gives_the_same_gradient():
    loss_fn, params, batch = _linreg()

    def outer(p, remat):
        r = inner.adapt(loss_fn, p, batch, jax.random.PRNGKey(0), steps=3, lrs=0.05, remat=remat)
        return loss_fn(r.params, batch, None)[0]

    a = jax.grad(outer)(params, False)
    b = jax.grad(outer)(params, True)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)
