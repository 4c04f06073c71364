"""MAML-family meta-gradients: second order matches finite differences and differs from first order."""

import jax
import jax.numpy as jnp
import numpy as np

from metamusic.meta.algorithm import InnerSpec, Task
from metamusic.meta.registry import Hooks, make_algorithm
from metamusic.meta.maml import msl_weights


def _tiny():
    def loss_fn(p, batch, key):
        x, y = batch
        h = jnp.tanh(x @ p["w1"])
        err = jnp.mean((h @ p["head"] - y) ** 2)
        return err, {"mse": err}

    rng = np.random.default_rng(0)
    params = {"w1": jnp.asarray(rng.normal(size=(2, 4)) * 0.5), "head": jnp.asarray(rng.normal(size=(4, 1)) * 0.5)}
    xs, xq = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    f = lambda x: np.sin(x[:, :1]) + x[:, 1:] ** 2
    task = Task((jnp.asarray(xs), jnp.asarray(f(xs))), (jnp.asarray(xq), jnp.asarray(f(xq))))
    return loss_fn, params, task


def _grad(name, **kw):
    loss_fn, params, task = _tiny()
    algo = make_algorithm(name, loss_fn, InnerSpec(steps=2, lr=0.3), **kw)
    meta = algo.init(params)
    g, _ = algo.task_grad(meta, task, jax.random.PRNGKey(0), jnp.int32(0), None)
    return algo, meta, task, g


def test_second_order_matches_finite_differences():
    with jax.enable_x64(True):
        loss_fn, params, task = _tiny()
        params = jax.tree.map(lambda x: x.astype(jnp.float64), params)
        task = jax.tree.map(lambda x: x.astype(jnp.float64), task)
        algo = make_algorithm("maml", loss_fn, InnerSpec(steps=2, lr=0.3))
        meta = algo.init(params)
        g, _ = algo.task_grad(meta, task, jax.random.PRNGKey(0), jnp.int32(0), None)

        @jax.jit
        def meta_loss(m):
            res = algo.adapt(m, task.support, jax.random.PRNGKey(0))
            return loss_fn(res.params, task.query, None)[0]

        eps = 1e-6
        for leaf in ("w1", "head"):
            flat = np.asarray(meta["params"][leaf]).ravel()
            for i in range(flat.size):
                d = np.zeros_like(flat)
                d[i] = eps
                up = jax.tree.map(lambda x: x, meta)
                dn = jax.tree.map(lambda x: x, meta)
                up["params"] = dict(meta["params"], **{leaf: jnp.asarray((flat + d).reshape(meta["params"][leaf].shape))})
                dn["params"] = dict(meta["params"], **{leaf: jnp.asarray((flat - d).reshape(meta["params"][leaf].shape))})
                fd = (float(meta_loss(up)) - float(meta_loss(dn))) / (2 * eps)
                assert abs(fd - float(np.asarray(g["params"][leaf]).ravel()[i])) < 1e-6 * max(1.0, abs(fd))


def test_first_order_differs_from_second_order():
    _, _, _, g2 = _grad("maml")
    _, _, _, g1 = _grad("fomaml")
    diff = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)))
    assert diff > 1e-3
    # first-order = the query gradient at the adapted params
    loss_fn, params, task = _tiny()
    algo = make_algorithm("fomaml", loss_fn, InnerSpec(steps=2, lr=0.3))
    adapted = algo.adapt(algo.init(params), task.support, jax.random.PRNGKey(0)).params
    gq = jax.grad(lambda p: loss_fn(p, task.query, None)[0])(adapted)
    for a, b in zip(jax.tree.leaves(g1["params"]), jax.tree.leaves(gq)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_anil_gradients_flow_only_through_head_adaptation():
    head_mask = lambda p: {"w1": jnp.zeros_like(p["w1"]), "head": jnp.ones_like(p["head"])}
    algo, meta, task, g = _grad("anil", hooks=Hooks(head_mask=head_mask))
    res = algo.adapt(meta, task.support, jax.random.PRNGKey(0))
    assert np.array_equal(res.params["w1"], meta["params"]["w1"])
    assert not np.array_equal(res.params["head"], meta["params"]["head"])
    assert float(jnp.abs(g["params"]["w1"]).sum()) > 0  # the body is still meta-learned


def test_learned_lrs_get_gradients():
    _, meta, _, g = _grad("metasgd")
    assert jax.tree.structure(g["lrs"]) == jax.tree.structure(meta["params"])
    assert g["lrs"]["w1"].shape == meta["params"]["w1"].shape and float(jnp.abs(g["lrs"]["w1"]).sum()) > 0
    _, meta, _, g = _grad("mamlpp")
    assert g["lrs"]["head"].shape == (2,) and float(jnp.abs(g["lrs"]["head"]).sum()) > 0


def test_msl_weights_anneal_to_the_last_step():
    np.testing.assert_allclose(msl_weights(0, 4, 100), [0.25] * 4)
    np.testing.assert_allclose(msl_weights(100, 4, 100), [0, 0, 0, 1])
    assert abs(float(msl_weights(37, 4, 100).sum()) - 1) < 1e-6
