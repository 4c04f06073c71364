"""One test per registry entry, in the manner of optax's tests over its optimizers.

Registering an algorithm, model, encoder, metric head or experiment family is the
one edit that puts it under these checks: it compiles once for a fixed shape, its
`adapt(steps=0)` returns the parameters unchanged, it reports the shared metric keys,
an outer step is finite and moves the parameters; models are causal and start near
the uniform distribution; encoders ignore padding.
"""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import synth
from metamusic import baselines, experiments
from metamusic.data.melody import EncodingConfig
from metamusic.experiments import inputs, masks
from metamusic.meta import direct, episodic
from metamusic.meta.algorithm import InnerSpec, Task
from metamusic.meta.outer import init_state, outer_step
from metamusic.meta.registry import ALGORITHMS, Hooks, make_algorithm
from metamusic.models import ENCODERS, MODELS, lm_loss, make_model
from metamusic.models.mlp import MLP

@pytest.fixture(autouse=True)
def _fresh_trace_counts():
    chex.clear_trace_counter()  # the counts are per function code, shared across parametrizations


SHARED_KEYS = {"loss", "outer/query_loss", "train/grad_norm", "train/param_norm", "train/skipped"}


def _regression_tasks(seed, batch=3, k=4):
    rng = np.random.default_rng(seed)
    amp, x, xq = rng.uniform(1, 2, (batch, 1, 1)), rng.uniform(-3, 3, (batch, k, 1)), rng.uniform(-3, 3, (batch, k, 1))
    f = lambda v: (amp * np.sin(v)).astype(np.float32)
    return Task((jnp.asarray(x, jnp.float32), jnp.asarray(f(x))), (jnp.asarray(xq, jnp.float32), jnp.asarray(f(xq))))


MLP_MODEL = MLP((8,))


def _mse(params, batch, key):
    x, y = batch
    err = jnp.mean((MLP_MODEL.apply(params, x) - y) ** 2)
    return err, {"mse": err}


def _algorithms():
    inner = InnerSpec(steps=2, lr=0.05)
    # amortized: a one-number "encoder" that shifts every parameter by a learned multiple of the support mean
    condition = lambda enc, params, support: jax.tree.map(lambda p: p + enc["w"] * jnp.mean(support[1]), params)
    # incontext: "params that read the support" here shift the output bias by the support's mean target
    prompt = lambda params, support: jax.tree.map(lambda p: p + 0.1 * jnp.mean(support[1]), params)
    hooks = Hooks(head_mask=masks.head_mask, context_mask=masks.context_mask,
                  encoder_init=lambda: {"w": jnp.zeros(())}, condition=condition, prompt=prompt)
    out = {name: make_algorithm(name, _mse, inner, hooks) for name in ALGORITHMS}
    out[baselines.JOINT] = baselines.joint_algorithm(_mse, inner)
    return out


@pytest.mark.parametrize("name", list(ALGORITHMS) + [baselines.JOINT])
def test_algorithm_conformance(name):
    algo = _algorithms()[name]
    tx = optax.adam(1e-2)
    params = MLP_MODEL.init(jax.random.PRNGKey(0), jnp.zeros((1, 1)))
    state = init_state(algo, tx, params)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state, tasks, key):
        return outer_step(algo, tx, state, tasks, key, algo.phase(0))

    for i in range(3):  # new data, same shapes: one trace
        state, metrics = step(state, _regression_tasks(i), jax.random.PRNGKey(i))
        assert SHARED_KEYS <= set(metrics), set(metrics)
        assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
        assert float(metrics["train/skipped"]) == 0.0
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.meta["params"], params)
    assert max(jax.tree.leaves(moved)) > 0
    task = jax.tree.map(lambda x: x[0], _regression_tasks(9))
    res = algo.adapt(state.meta, task.support, jax.random.PRNGKey(0), query=task.query, steps=0)
    chex.assert_trees_all_equal(res.params, state.meta["params"])  # zero steps: exactly the meta-params
    assert res.query_losses.shape == (1,)
    np.testing.assert_allclose(float(res.query_losses[0]), float(_mse(state.meta["params"], task.query, None)[0]),
                               rtol=1e-6)


@pytest.mark.parametrize("name", list(episodic.HEADS))
def test_metric_head_conformance(name):
    corpus = synth.token_corpus(n_styles=4, n_tunes=6)
    from configs import relation as rel_cfg

    cfg = rel_cfg.get_config()
    cfg.data.ways, cfg.data.shots, cfg.data.queries, cfg.data.length = 3, 2, 2, 16
    cfg.model.conv.dim, cfg.model.conv.layers, cfg.model.relation_hidden = 8, 1, 8
    cfg.meta.algorithm = name
    exp = experiments.build(cfg, corpus)
    algo, tx = exp.algorithm(name), exp.optimizer(name)
    state = init_state(algo, tx, exp.init_params())
    from metamusic.data import EpisodeSampler

    sampler = EpisodeSampler(corpus, corpus.styles, ways=3, shots=2, queries=2, length=16)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state, eps, key):
        return outer_step(algo, tx, state, eps, key)

    for i in range(2):
        state, metrics = step(state, inputs.to_device(sampler.sample(np.random.default_rng(i), 2)), jax.random.PRNGKey(i))
        assert SHARED_KEYS | {"train/accuracy"} <= set(metrics)
        assert np.isfinite(float(metrics["loss"]))
    ep = jax.tree.map(lambda x: x[0], inputs.to_device(sampler.sample(np.random.default_rng(5), 1)))
    p = exp.parts.probabilities(name, state.meta["params"], ep, 3)
    assert p.shape == (6, 3)
    if name == "protonet":  # softmax over classes
        np.testing.assert_allclose(np.asarray(p.sum(-1)), 1.0, rtol=1e-5)


ENC = EncodingConfig()
MODEL_KW = {"lstm": {"embed_dim": 8, "hidden": 16, "layers": 1},
            "transformer": {"dim": 16, "layers": 1, "heads": 2, "max_len": 32},
            "incontext": {"dim": 16, "layers": 1, "heads": 2, "max_len": 32}}


@pytest.mark.parametrize("name", list(MODELS))
def test_model_conformance(name):
    kw = MODEL_KW.get(name, {})
    model = make_model(name, ENC.vocab_size, **kw)
    rng = np.random.default_rng(0)
    tok = jnp.asarray(rng.integers(0, ENC.num_classes, (3, 12)), jnp.int32)
    params = model.init(jax.random.PRNGKey(0), tok)
    apply = jax.jit(chex.assert_max_traces(lambda p, t: model.apply(p, t), n=1))
    logits = apply(params, tok)
    apply(params, tok[::-1])
    assert logits.shape == (3, 12, ENC.vocab_size)
    # causal: changing token t changes no logit before t
    bumped = tok.at[:, 7].set((tok[:, 7] + 1) % ENC.num_classes)
    np.testing.assert_allclose(np.asarray(apply(params, bumped)[:, :7]), np.asarray(logits[:, :7]), atol=1e-6)
    assert float(jnp.abs(apply(params, bumped)[:, 7] - logits[:, 7]).max()) > 0
    # at init the prediction is near uniform: NLL near log(vocab)
    loss, aux = lm_loss(model, params, tok, jnp.ones(tok.shape))
    assert abs(float(loss) - math.log(ENC.vocab_size)) < 1.0
    assert float(aux["events"]) == 3 * 11


@pytest.mark.parametrize("name", list(ENCODERS))
def test_encoder_conformance(name):
    kw = {"conv": {"dim": 8, "layers": 2, "kernel": 3}, "transformer": {"dim": 8, "layers": 1, "heads": 2}}[name]
    enc = ENCODERS[name](ENC.vocab_size, ENC.num_classes, **kw)
    rng = np.random.default_rng(0)
    tok = jnp.asarray(rng.integers(2, ENC.num_classes, (4, 16)), jnp.int32)
    mask = jnp.asarray(np.arange(16)[None] < np.array([16, 12, 9, 5])[:, None], jnp.float32)
    params = enc.init(jax.random.PRNGKey(0), tok, mask)
    apply = jax.jit(chex.assert_max_traces(lambda p, t, m: enc.apply(p, t, m), n=1))
    feats = apply(params, tok, mask)
    assert feats.ndim == 2 and feats.shape[0] == 4
    # padding is invisible: changing tokens where mask is 0 changes no feature
    noise = jnp.asarray(rng.integers(2, ENC.num_classes, (4, 16)), jnp.int32)
    padded = jnp.where(mask > 0, tok, noise)
    np.testing.assert_allclose(np.asarray(apply(params, padded, mask)), np.asarray(feats), atol=1e-5)


def _tiny_config(family):
    import importlib

    mod = {"melody": "maml_tiny", "gan": "gan_tiny", "classify": "relation", "sinusoid": "sinusoid"}[family]
    cfg = importlib.import_module(f"configs.{mod}").get_config()
    if family == "classify":
        cfg.data.ways, cfg.data.shots, cfg.data.queries, cfg.data.length = 2, 2, 2, 16
        cfg.model.conv.dim, cfg.model.conv.layers, cfg.model.relation_hidden = 8, 1, 8
        cfg.eval.val_tasks = 2
    if family == "sinusoid":
        cfg.meta.batch = 4
    cfg.progress = False
    return cfg


@pytest.mark.parametrize("family", list(experiments.EXPERIMENTS))
def test_experiment_conformance(family):
    """Every family validates its config, builds every method, and takes one finite outer step with the last
    (the trained baseline where the family has one; each algorithm's step is checked above and in train/)."""
    cfg = _tiny_config(family)
    experiments.validate(cfg)
    corpus = None if family == "sinusoid" else synth.token_corpus(n_styles=6, n_tunes=8, length=20)
    exp = experiments.build(cfg, corpus)
    assert exp.family == family and exp.methods
    algos = {name: exp.algorithm(name) for name in exp.methods}
    for name in exp.methods[-1:]:
        algo, tx = algos[name], exp.optimizer(name)
        state = init_state(algo, tx, exp.init_params())
        state, metrics = jax.jit(lambda s, b, k: outer_step(algo, tx, s, b, k))(
            state, exp.train_sampler(name)(0), jax.random.PRNGKey(0))
        assert SHARED_KEYS <= set(metrics) and np.isfinite(float(metrics["loss"])), (name, metrics)
        assert float(metrics["train/skipped"]) == 0.0, name


def test_direct_algorithm_is_not_in_the_meta_learning_registry():
    assert baselines.JOINT not in ALGORITHMS
    algo = direct.make("x", _mse)
    params = MLP_MODEL.init(jax.random.PRNGKey(0), jnp.zeros((1, 1)))
    task = jax.tree.map(lambda x: x[0], _regression_tasks(0))
    # no inner loop by default: adapt leaves the params exactly as they are
    chex.assert_trees_all_equal(algo.adapt({"params": params}, task.support, jax.random.PRNGKey(0)).params, params)
