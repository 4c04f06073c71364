"""Every algorithm learns on a tiny task family (sinusoid regression, 2 x 40 MLP, a few hundred steps)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metamusic.meta.algorithm import InnerSpec
from metamusic.meta.registry import Hooks, make_algorithm
from metamusic.meta.outer import init_state, make_outer_step, outer_step
from metamusic.models.mlp import MLP
from metamusic.experiments.sinusoid import make_loss, sample_tasks

MODEL = MLP((40, 40))
LOSS = make_loss(MODEL)
HEAD = lambda p: jax.tree_util.tree_map_with_path(
    lambda path, x: jnp.float32(any(getattr(k, "key", None) == "head" for k in path)), p)


def _post_adapt_mse(algo, meta, tasks):
    keys = jax.random.split(jax.random.PRNGKey(1), tasks.support[0].shape[0])
    q = jax.vmap(lambda t, k: algo.adapt(meta, t.support, k, query=t.query).query_losses)(tasks, keys)
    return float(q[:, -1].mean())


@pytest.mark.parametrize("name,lr,steps", [("maml", 0.01, 300), ("fomaml", 0.01, 300), ("anil", 0.1, 300),
                                           ("metasgd", 0.01, 300), ("mamlpp", 0.01, 300), ("reptile", 0.01, 300)])
def test_algorithm_learns(name, lr, steps):
    opts = {"hooks": Hooks(head_mask=HEAD)} if name == "anil" else {}
    if name == "mamlpp":
        opts = {"msl_anneal_steps": 100, "first_order_steps": 50}
    algo = make_algorithm(name, LOSS, InnerSpec(steps=2, lr=lr), **opts)
    tx = optax.adam(3e-3 if name == "reptile" else 1e-3)
    state = init_state(algo, tx, MODEL.init(jax.random.PRNGKey(0), jnp.zeros((1, 1))))
    step = make_outer_step(algo, tx)
    test_tasks = sample_tasks(np.random.default_rng(99), 100, 10)
    before = _post_adapt_mse(algo, state.meta, test_tasks)
    for s in range(steps):
        state, m = step(state, sample_tasks(np.random.default_rng(s), 10, 10), jax.random.PRNGKey(s), algo.phase(s))
    after = _post_adapt_mse(algo, state.meta, test_tasks)
    assert after < 0.7 * before, (name, before, after)
    assert int(state.skipped) == 0


def test_no_retracing_after_the_first_step():
    algo = make_algorithm("fomaml", LOSS, InnerSpec(steps=2, lr=0.01))
    tx = optax.adam(1e-3)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state, tasks, key):
        return outer_step(algo, tx, state, tasks, key)

    state = init_state(algo, tx, MODEL.init(jax.random.PRNGKey(0), jnp.zeros((1, 1))))
    for s in range(5):
        state, _ = step(state, sample_tasks(np.random.default_rng(s), 4, 10), jax.random.PRNGKey(s))
    assert int(state.step) == 5


def test_non_finite_step_is_skipped_and_counted():
    algo = make_algorithm("maml", LOSS, InnerSpec(steps=1, lr=0.01))
    tx = optax.adam(1e-3)
    state = init_state(algo, tx, MODEL.init(jax.random.PRNGKey(0), jnp.zeros((1, 1))))
    step = make_outer_step(algo, tx)
    good = sample_tasks(np.random.default_rng(0), 4, 10)
    state, _ = step(state, good, jax.random.PRNGKey(0))
    before = jax.tree.map(np.asarray, state.meta)
    opt_before = jax.tree.map(np.asarray, state.opt_state)
    bad = good._replace(query=(good.query[0], good.query[1].at[0, 0, 0].set(jnp.nan)))
    state, m = step(state, bad, jax.random.PRNGKey(1))
    assert float(m["train/skipped"]) == 1.0 and int(state.skipped) == 1 and int(state.bad_streak) == 1
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state.meta)):
        assert np.array_equal(a, b)
    for a, b in zip(jax.tree.leaves(opt_before), jax.tree.leaves(state.opt_state)):
        assert np.array_equal(a, b)
    state, _ = step(state, good, jax.random.PRNGKey(2))
    assert int(state.bad_streak) == 0 and int(state.skipped) == 1 and int(state.step) == 3
