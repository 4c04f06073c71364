"""A melody LM that reads the bar-position channel learns what only the meter tells."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metamusic.data import melody
from metamusic.models import lm_loss, make_model

ENC = melody.EncodingConfig()


def _tunes(n, T, rng):
    """Every downbeat is a note, every other step a no-event; bars change length at random (8, 12 or 16
    steps), so when the next note comes is known only from the bar position."""
    tok = np.zeros((n, T), np.int32)
    pos = np.zeros((n, T), np.int32)
    for i in range(n):
        p, t = [], []
        while len(p) < T - 1:
            bar = int(rng.choice([8, 12, 16]))
            p += list(range(bar))
            t += [int(rng.integers(2, 20))] + [melody.NO_EVENT] * (bar - 1)
        tok[i] = np.concatenate([[ENC.bos], t[: T - 1]])
        pos[i] = np.concatenate([[melody.NO_POS], p[: T - 1]])
    return tok, np.ones((n, T), np.float32), pos


@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_position_channel_lowers_loss_where_meter_decides(name):
    rng = np.random.default_rng(0)
    train, test = _tunes(32, 48, rng), _tunes(32, 48, rng)
    kw = dict(embed_dim=16, hidden=32, layers=1) if name == "lstm" else dict(dim=32, layers=1, heads=2, max_len=64)
    final = {}
    for bar in (0, melody.MAX_POS + 1):
        model = make_model(name, ENC.vocab_size, bar_positions=bar, **kw)
        x = jnp.zeros((1, 47), jnp.int32)
        params = model.init(jax.random.PRNGKey(0), x, x if bar else None)
        tx = optax.adam(1e-2)
        opt = tx.init(params)
        loss = lambda p, b: lm_loss(model, p, b[0], b[1], b[2] if bar else None)[0]

        @jax.jit
        def step(p, o):
            g = jax.grad(loss)(p, train)
            u, o = tx.update(g, o, p)
            return optax.apply_updates(p, u), o

        for _ in range(150):
            params, opt = step(params, opt)
        final[bar] = float(loss(params, test))
    # without positions a note's timing is a guess (about 1 in 12); with them only its pitch is unknown
    assert final[melody.MAX_POS + 1] < final[0] - 0.1, final
