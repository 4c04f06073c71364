"""The two players' own optimizers (experiments.gan_game.optimizer): separate clipping, the critic's steps
per generator step, the generator held still while the critic pretrains."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from configs import gan as gan_config
from metamusic.experiments import gan_game


def _cfg(**gan_fields):
    cfg = gan_config.get_config()
    cfg.optim.clip, cfg.optim.critic_clip, cfg.optim.critic_lr = 1.0, 10.0, 1e-2
    for k, v in gan_fields.items():
        cfg.gan[k] = v
    return cfg


def _run(tx, grads, steps):
    meta = {"params": {"g": {"w": jnp.zeros(3)}, "d": {"w": jnp.zeros(3)}}, "encoder": {"w": jnp.zeros(2)}}
    state = tx.init(meta)
    history = []
    for _ in range(steps):
        u, state = tx.update(grads, state, meta)
        meta = optax.apply_updates(meta, u)
        history.append(jax.tree.map(np.asarray, meta))
    return history


def _grads(g_scale, d_scale):
    return {"params": {"g": {"w": jnp.full(3, g_scale)}, "d": {"w": jnp.full(3, d_scale)}},
            "encoder": {"w": jnp.full(2, g_scale)}}


def test_the_critic_is_updated_every_step_and_the_generator_every_critic_steps_after_pretraining():
    tx = gan_game.optimizer(_cfg(critic_steps=2, critic_pretrain=4), g_lr=1e-2)
    hist = _run(tx, _grads(1.0, 1.0), 8)
    d = [float(h["params"]["d"]["w"][0]) for h in hist]
    g = [float(h["params"]["g"]["w"][0]) for h in hist]
    enc = [float(h["encoder"]["w"][0]) for h in hist]
    assert all(b < a for a, b in zip([0.0] + d, d))  # the critic moves at every step
    assert g[:4] == [0.0] * 4 and enc[:4] == [0.0] * 4  # pretraining: the generator (and its encoder) still
    assert g[4] == g[3] and g[5] < g[4] and g[6] == g[5] and g[7] < g[6]  # then one update per 2 steps


def test_each_player_is_clipped_by_its_own_norm():
    """A huge generator gradient no longer shrinks the critic's step (one clip over both players did). Adam's
    first step does not depend on the gradient's scale, so the second step tells: the critic's update after
    the gradient sequences (huge generator, small) and (small, small) is the same with its own clip and differs
    with the shared one."""
    cfg = _cfg(critic_steps=1, critic_pretrain=0)
    small, huge = _grads(1.0, 0.5), _grads(1e6, 0.5)
    meta = {"params": {"g": {"w": jnp.zeros(3)}, "d": {"w": jnp.zeros(3)}}, "encoder": {"w": jnp.zeros(2)}}

    def second_critic_update(tx, first):
        _, state = tx.update(first, tx.init(meta), meta)
        u, _ = tx.update(small, state, meta)
        return np.asarray(u["params"]["d"]["w"])

    own = gan_game.optimizer(cfg, g_lr=1e-2)
    np.testing.assert_allclose(second_critic_update(own, huge), second_critic_update(own, small), rtol=1e-6)
    shared = gan_game.optimizer(_with(cfg, critic_lr=0.0), g_lr=1e-2)  # the runs before these settings
    a, b = second_critic_update(shared, huge), second_critic_update(shared, small)
    assert float(np.abs(a - b).max()) > 0.02 * float(np.abs(b).max())  # (Adam damps it: 6% here)
def _with(cfg, **optim_fields):
    cfg = cfg.copy_and_resolve_references()
    for k, v in optim_fields.items():
        cfg.optim[k] = v
    return cfg
