"""Linear-time sampling: the carried LSTM state and the Transformer's key/value cache give the
logits of a full forward pass, and the same tokens as the quadratic sampler for the same key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metamusic.models import make_model
from metamusic.models.sampling import _DECODERS, sample_lm

V, T = 40, 24
CASES = [
    ("lstm", dict(embed_dim=16, hidden=32, layers=2, impl="fast", bar_positions=16, context_dim=4)),
    ("lstm", dict(embed_dim=16, hidden=32, layers=1, impl="flax")),
    ("transformer", dict(dim=32, layers=2, heads=4, max_len=T, bar_positions=16, context_dim=4)),
]


def _model(name, kw):
    model = make_model(name, V, **kw)
    pos = jnp.zeros((1, T), jnp.int32) if kw.get("bar_positions") else None
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, T), jnp.int32), pos)
    # larger weights than the init's, so the logits are far from uniform and a wrong state shows
    params = jax.tree_util.tree_map(lambda a: 3.0 * a, params)
    return model, params


@pytest.mark.parametrize("name,kw", CASES, ids=["lstm-fast-2layers-pos", "lstm-flax", "transformer-pos"])
def test_step_logits_equal_full_forward(name, kw):
    model, params = _model(name, kw)
    rng = np.random.default_rng(0)
    tok = jnp.asarray(rng.integers(2, V, (3, T)), jnp.int32)
    pos = jnp.asarray(rng.integers(0, 16, (3, T)), jnp.int32) if kw.get("bar_positions") else None
    full = model.apply(params, tok, pos)
    state, step = _DECODERS[type(model)](model, params, 3, T)
    step = jax.jit(step)  # one compile, not T op-by-op calls
    got = []
    for t in range(T):
        logits, state = step(state, tok[:, t], None if pos is None else pos[:, t])
        got.append(logits)
    got = np.stack(got, axis=1)
    assert np.abs(np.asarray(full)).max() > 1.0  # informative logits
    # float32: the cached attention sums in another order (differences up to 1e-3 on logits of size 10)
    np.testing.assert_allclose(got, np.asarray(full), atol=3e-3, rtol=1e-3)


@pytest.mark.parametrize("name,kw", CASES, ids=["lstm-fast-2layers-pos", "lstm-flax", "transformer-pos"])
@pytest.mark.parametrize("prime", [[1], [1, 5, 7, 9]])
def test_same_tokens_as_rerun_sampler(name, kw, prime):
    model, params = _model(name, kw)
    positions = np.arange(T) % 16 if kw.get("bar_positions") else None
    args = dict(num=8, length=T, temperature=0.8, key=jax.random.PRNGKey(3), pad=0, bos=1, vocab_size=V,
                positions=positions)
    fast = sample_lm(model, params, np.array(prime, np.int32), **args)
    slow = sample_lm(model, params, np.array(prime, np.int32), incremental=False, **args)
    # exact on purpose: the draws are discrete, and the two paths' logits differ only in float32
    # rounding, which changes a draw only on a near-tie of logits + noise (a continuous variable)
    np.testing.assert_array_equal(fast, slow)
    assert (fast[:, : len(prime)] == prime).all() and not np.isin(fast[:, len(prime):], [0, 1]).any()
    assert len(np.unique(fast[:, len(prime):])) > 5  # real draws, not a constant
