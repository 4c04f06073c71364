"""Conditioned melody models: CAVIA (gradient steps on a context vector) and amortized conditioning (a
support-set encoder predicts the context). Each lowers query loss on styles that differ only in their
pitch set (a task family where conditioning matters)."""

import jax
import jax.numpy as jnp
import numpy as np

import synth
from configs import maml_tiny
from metamusic import experiments
from metamusic.errors import MetamusicError
from metamusic.experiments import inputs, melody
from metamusic.meta.outer import init_state, make_outer_step


def _cfg(name="cavia"):
    cfg = maml_tiny.get_config()
    cfg.meta.algorithm = name
    cfg.meta.init = "random"
    cfg.model.context_dim = 8
    cfg.meta.inner_steps = 2
    cfg.meta.per_algorithm.cavia.context_lr = 1.0
    cfg.data.length = 24
    cfg.data.shots, cfg.data.queries = 4, 4
    cfg.meta.batch = 8
    return cfg


def _meta_train(name, steps=150, **overrides):
    corpus = synth.token_corpus(n_styles=10, n_tunes=20, length=40)  # style k: its own 4 pitches
    cfg = _cfg(name)
    for field, value in overrides.items():
        section, key = field.split("__")
        cfg[section][key] = value
    exp = experiments.build(cfg, corpus)
    algo, tx = exp.algorithm(name), exp.optimizer(name)
    state = init_state(algo, tx, exp.init_params())
    step = make_outer_step(algo, tx)
    sampler = melody.task_sampler(cfg, corpus, name)
    for s in range(steps):
        state, m = step(state, sampler(s), jax.random.PRNGKey(s), algo.phase(s))
    tasks = inputs.to_task(melody.episodes(cfg, corpus, "test", 4, 16, 3))
    res = jax.vmap(lambda t, k: algo.adapt(state.meta, t.support, k, query=t.query))(
        tasks, jax.random.split(jax.random.PRNGKey(0), 16))
    return exp, algo, state, tasks, res


def test_cavia_adapts_only_the_context_and_lowers_query_loss():
    exp, algo, state, tasks, res = _meta_train("cavia")
    q = np.asarray(res.query_losses).mean(0)
    assert q[-1] < q[0] - 0.1, q  # the context learned from 4 support windows tells the style's pitches
    one = jax.tree.map(lambda x: x[0], res.params)
    moved = jax.tree_util.tree_map_with_path(
        lambda path, a, b: (any(getattr(k, "key", None) == "context" for k in path), float(jnp.abs(a - b).max())),
        one, state.meta["params"])
    flags = jax.tree.leaves(moved, is_leaf=lambda x: isinstance(x, tuple))
    assert any(c and d > 0 for c, d in flags) and all(d == 0 for c, d in flags if not c)


def test_cavia_without_a_context_is_a_config_error():
    cfg = _cfg()
    cfg.model.context_dim = 0
    try:
        experiments.validate(cfg)
    except MetamusicError as e:
        assert "model.context_dim" in str(e) and "cavia" in str(e)
    else:
        raise AssertionError("validation accepted cavia without a context")


def test_amortized_context_comes_from_the_support_and_lowers_query_loss():
    """Trained as the default trains it: tasks of whole tunes (here two windows each, meta.per_algorithm)."""
    from metamusic import baselines

    exp, algo, state, tasks, res = _meta_train("amortized", steps=100,
                                               meta__per_algorithm={"amortized": {"tune_windows": 2}})
    assert melody.task_sampler(exp.cfg, exp.corpus, "amortized")(0).support[0].shape[1] == 2 * exp.cfg.data.shots
    q = np.asarray(res.query_losses).mean(0)
    assert q.shape == (2,)  # the unconditioned model, then the conditioned one
    assert q[-1] < q[0] - 0.1, q
    t0 = jax.tree.map(lambda x: x[0], tasks)
    curve = np.asarray(algo.adapt(state.meta, t0.support, jax.random.PRNGKey(0), query=t0.query, steps=3).query_losses)
    assert curve.shape == (4,) and np.allclose(curve[1:], curve[1])  # no inner loop: one conditioned value
    # two styles' supports give two contexts, and the model's predictions differ with them
    ctx = np.asarray(res.params["params"]["context"]["embedding"])[:, 0]
    styles = np.asarray(melody.episodes(exp.cfg, exp.corpus, "test", 4, 16, 3).style)
    a, b = np.flatnonzero(styles == styles[0])[0], np.flatnonzero(styles != styles[0])[0]
    assert np.abs(ctx[a] - ctx[b]).max() > 1e-3
    only_lm = jax.tree.map(lambda x: x[a], res.params)
    other = jax.tree.map(lambda x: x[b], res.params)
    x = tasks.query[0][a][:2], tasks.query[2][a][:2]
    la = exp.model.apply(only_lm, x[0][:, :-1], x[1][:, 1:])
    lb = exp.model.apply(other, x[0][:, :-1], x[1][:, 1:])
    assert float(jnp.abs(la - lb).max()) > 1e-3
    # the "+finetune" row: SGD on every weight from the conditioned model lowers the support loss, and
    # the query loss stays well below the unconditioned model's
    then = baselines.then_finetune(algo, exp.loss_fn, 0.1, 3)
    ft = jax.vmap(lambda t, k: then.adapt(state.meta, t.support, k, query=t.query))(
        tasks, jax.random.split(jax.random.PRNGKey(0), 16))
    fq, fs = np.asarray(ft.query_losses).mean(0), np.asarray(ft.support_losses).mean(0)
    np.testing.assert_allclose(fq[0], q[-1], rtol=1e-5)  # it starts from the conditioned model
    assert fs[-1] < fs[0] and fq[-1] < q[0] - 0.1, (fs, fq)


def test_head_film_of_a_fresh_context_leaves_the_model_unchanged():
    """model.context_output: the context also FiLMs the head's input; at a zero context (a fresh one) the
    model computes what it computes without that layer, and a non-zero context moves the logits."""
    from metamusic.models import make_model

    kw = dict(embed_dim=8, hidden=16, layers=1, impl="fast", context_dim=4)
    with_out, without = make_model("lstm", 12, context_output=True, **kw), make_model("lstm", 12, **kw)
    x = jnp.asarray(np.random.default_rng(0).integers(0, 12, (2, 10)))
    p = with_out.init(jax.random.PRNGKey(0), x)
    assert "context_film_out" in p["params"]
    p = jax.tree.map(lambda a: a + 0.1, p)  # non-zero FiLM weights and biases ...
    p["params"]["context_film_out"]["bias"] = jnp.zeros_like(p["params"]["context_film_out"]["bias"])
    zero = {**p, "params": {**p["params"], "context": {"embedding": jnp.zeros((1, 4))}}}
    p_in = {**zero, "params": {k: v for k, v in zero["params"].items() if k != "context_film_out"}}
    np.testing.assert_allclose(with_out.apply(zero, x), without.apply(p_in, x), rtol=1e-6, atol=1e-6)
    moved = {**zero, "params": {**zero["params"], "context": {"embedding": jnp.ones((1, 4))}}}
    # ... and with the same non-zero context in both, the head's FiLM is all that differs
    assert float(jnp.abs(with_out.apply(moved, x) - without.apply({**p_in, "params": {**p_in["params"],
                 "context": {"embedding": jnp.ones((1, 4))}}}, x)).max()) > 1e-3
