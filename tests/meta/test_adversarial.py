"""The combined GAN loss: each player gets exactly its own gradient; the critic learns real vs noise."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metamusic.meta import adversarial

T, C = 16, 6


def _toy():
    """A linear 'generator' (logits -> softmax sequence) and a small MLP critic on flattened inputs."""
    def generate(g, batch, key):
        x = jax.nn.softmax(g["logits"] + 0.1 * jax.random.normal(key, (batch.shape[0], T, C)))
        return x, jnp.square(g["logits"]).mean()

    def critic(d, x, batch):
        h = jnp.tanh(x.reshape(x.shape[0], -1) @ d["w1"])
        return h @ d["w2"]

    def real_inputs(batch):
        return batch

    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    params = {"g": {"logits": jax.random.normal(k1, (T, C))},
              "d": {"w1": 0.1 * jax.random.normal(k2, (T * C, 16)), "w2": 0.1 * jax.random.normal(k3, (16,))}}
    return generate, critic, real_inputs, params


def _real(n):
    """Real data: one fixed repeating pattern of one-hots."""
    return jnp.broadcast_to(jax.nn.one_hot(jnp.arange(T) % 3, C), (n, T, C))


@pytest.mark.parametrize("kind", adversarial.KINDS)
def test_each_player_gets_only_its_own_loss_gradient(kind):
    generate, critic, real_inputs, params = _toy()
    loss_fn = adversarial.make_loss(generate, critic, real_inputs, kind=kind, mle_weight=0.5,
                                    r1_weight=1.0 if kind != "wgan-gp" else 0.0)
    batch, key = _real(8), jax.random.PRNGKey(1)
    g_all = jax.grad(lambda p: loss_fn(p, batch, key)[0])(params)
    g_d = jax.grad(lambda p: loss_fn(p, batch, key)[1]["d_loss"])(params)
    g_g = jax.grad(lambda p: loss_fn(p, batch, key)[1]["g_loss"])(params)
    for a, b in zip(jax.tree.leaves(g_all["d"]), jax.tree.leaves(g_d["d"])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    for a, b in zip(jax.tree.leaves(g_all["g"]), jax.tree.leaves(g_g["g"])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # and neither loss pushes the other player's parameters
    assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(g_d["g"]))
    assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(g_g["d"]))
    assert np.isfinite(float(loss_fn(params, batch, key)[0]))


@pytest.mark.parametrize("kind", adversarial.KINDS)
def test_critic_loss_falls_on_real_vs_noise(kind):
    _, critic, real_inputs, params = _toy()

    def noise_gen(g, batch, key):  # a fixed "generator": uniform random one-hots
        return jax.nn.one_hot(jax.random.randint(key, (batch.shape[0], T), 0, C), C), jnp.zeros(())

    loss_fn = adversarial.make_loss(noise_gen, critic, real_inputs, kind=kind)
    tx = optax.adam(1e-2)
    d = params["d"]
    opt = tx.init(d)

    @jax.jit
    def step(d, opt, key):
        (loss, aux), g = jax.value_and_grad(lambda dd: loss_fn({"g": params["g"], "d": dd}, _real(16), key),
                                            has_aux=True)(d)
        upd, opt = tx.update(g, opt)
        return optax.apply_updates(d, upd), opt, aux

    first = None
    for i in range(150):
        d, opt, aux = step(d, opt, jax.random.PRNGKey(i))
        first = first if first is not None else float(aux["d_loss"])
    last = float(aux["d_loss"])
    assert last < first - 0.5, (first, last)
    assert float(aux["d_real"]) > float(aux["d_fake"])


def test_unknown_loss_kind_names_the_choices():
    with pytest.raises(ValueError, match="wgan-gp"):
        adversarial.make_loss(None, None, None, kind="lsgan")


def test_player_lrs_match_params():
    _, _, _, params = _toy()
    lrs = adversarial.player_lrs(params, 0.3, 0.1)
    assert jax.tree.structure(lrs) == jax.tree.structure(params)
    assert lrs["g"]["logits"] == 0.3 and lrs["d"]["w1"] == 0.1


def test_adv_weight_zero_leaves_the_generator_only_its_likelihood_term():
    """gan.adv_weight=0 (the ablation): the generator's gradient is the MLE term's alone, the critic's unchanged."""
    generate, critic, real_inputs, params = _toy()
    batch, key = _real(8), jax.random.PRNGKey(1)
    off = adversarial.make_loss(generate, critic, real_inputs, mle_weight=0.5, adv_weight=0.0)
    on = adversarial.make_loss(generate, critic, real_inputs, mle_weight=0.5)
    g_off = jax.grad(lambda p: off(p, batch, key)[0])(params)
    g_on = jax.grad(lambda p: on(p, batch, key)[0])(params)
    mle = jax.grad(lambda g: 0.5 * generate(g, batch, jax.random.split(key)[0])[1])(params["g"])
    np.testing.assert_allclose(g_off["g"]["logits"], mle["logits"], rtol=1e-6)
    assert float(jnp.abs(g_on["g"]["logits"] - g_off["g"]["logits"]).max()) > 0
    for a, b in zip(jax.tree.leaves(g_off["d"]), jax.tree.leaves(g_on["d"])):
        np.testing.assert_allclose(a, b, rtol=1e-6)
