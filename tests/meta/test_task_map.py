"""Running a meta-batch's tasks one after another (lax.map) gives vmap's meta-gradients and meta-updates."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metamusic.errors import MetamusicError
from metamusic.meta.algorithm import InnerSpec, Task
from metamusic.meta.outer import init_state, make_outer_step, task_grads
from metamusic.meta.registry import ALGORITHMS, make_algorithm, task_map_for
from metamusic.models import lm_loss, make_model

MODEL = make_model("lstm", 12, embed_dim=8, hidden=16, layers=1, impl="fast")


def _loss(params, batch, key):
    return lm_loss(MODEL, params, *batch)


def _tasks(n=4, k=3, t=10, seed=0):
    rng = np.random.default_rng(seed)
    tok = lambda: jnp.asarray(rng.integers(2, 10, (n, k, t)), jnp.int32)
    mask = lambda: jnp.asarray(rng.random((n, k, t)) < 0.9, jnp.float32)
    return Task((tok(), mask()), (tok(), mask()))


@pytest.mark.parametrize("name", ["maml", "fomaml", "reptile"])
def test_map_and_vmap_give_the_same_task_gradients(name):
    algo = make_algorithm(name, _loss, InnerSpec(steps=2, lr=0.3))
    params = MODEL.init(jax.random.PRNGKey(0), jnp.zeros((1, 9), jnp.int32))
    meta, tasks = algo.init(params), _tasks()
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    gv, mv = jax.jit(lambda m: task_grads(algo, m, tasks, keys, 0, task_map="vmap"))(meta)
    gm, mm = jax.jit(lambda m: task_grads(algo, m, tasks, keys, 0, task_map="map"))(meta)
    for a, b in zip(jax.tree.leaves((gv, mv)), jax.tree.leaves((gm, mm))):
        assert a.shape == b.shape and a.shape[0] == 4  # stacked per task either way
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=1e-6)
    per_task = jax.tree.leaves(gv)[0]
    assert float(jnp.abs(per_task[0] - per_task[1]).max()) > 1e-4  # the tasks differ: not one gradient 4 times


def test_outer_steps_with_map_track_vmap_and_lower_the_loss():
    algo = make_algorithm("maml", _loss, InnerSpec(steps=2, lr=0.3))
    tx = optax.adam(1e-2)
    params = MODEL.init(jax.random.PRNGKey(0), jnp.zeros((1, 9), jnp.int32))
    states = {m: init_state(algo, tx, params) for m in ("vmap", "map")}
    steps = {m: make_outer_step(algo, tx, m) for m in ("vmap", "map")}
    losses = {m: [] for m in states}
    for i in range(20):
        tasks = _tasks(seed=i % 2)  # two meta-batches in turn: the loss on them falls
        for m in states:
            states[m], metrics = steps[m](states[m], tasks, jax.random.PRNGKey(i))
            losses[m].append(float(metrics["loss"]))
    np.testing.assert_allclose(losses["map"], losses["vmap"], rtol=1e-3)
    assert losses["map"][-1] < 0.9 * losses["map"][0], losses["map"]
    for a, b in zip(jax.tree.leaves(states["vmap"].meta), jax.tree.leaves(states["map"].meta)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-4)


def test_task_map_choice():
    per_task = {n for n, e in ALGORITHMS.items() if e.per_task_weights}
    assert {"maml", "fomaml", "reptile"} <= per_task < set(ALGORITHMS)
    assert task_map_for("maml") == "map" and task_map_for("reptile", "auto") == "map"
    assert task_map_for("cavia") == "vmap" and task_map_for("joint") == "vmap"  # shared weights across tasks
    assert task_map_for("maml", "vmap") == "vmap" and task_map_for("cavia", "map") == "map"
    with pytest.raises(ValueError, match="task_map='pmap'; allowed: vmap, map"):
        make_outer_step(make_algorithm("fomaml", _loss, InnerSpec(1, 0.1)), optax.sgd(0.1), "pmap")


def test_a_bad_task_map_in_the_config_names_the_field():
    from configs import maml_tiny
    from metamusic import experiments

    cfg = maml_tiny.get_config()
    cfg.meta.task_map = "loop"
    with pytest.raises(MetamusicError, match="meta.task_map"):
        experiments.validate(cfg)


def test_cpu_split_setting(monkeypatch):
    """sharding.cpu_devices: asks XLA for that many CPU devices unless XLA_FLAGS already chooses a count,
    and must divide the meta-batch."""
    from configs import maml_tiny
    from metamusic import experiments
    from metamusic.train.sharding import split_cpu

    cfg = maml_tiny.get_config()
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    split_cpu(cfg)
    import os

    assert os.environ["XLA_FLAGS"] == ("--xla_cpu_enable_fast_math=false "
                                       f"--xla_force_host_platform_device_count={cfg.sharding.cpu_devices}")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    split_cpu(cfg)
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=4"  # the user's choice stays
    cfg.sharding.cpu_devices, cfg.meta.batch = 3, 4
    with pytest.raises(MetamusicError, match="sharding.cpu_devices.*divisor of meta.batch=4"):
        experiments.validate(cfg)
