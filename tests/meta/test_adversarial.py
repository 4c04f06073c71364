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


def test_reinforce_gradient_matches_the_exact_gradient_of_the_expected_verdict():
    """gan.estimator='reinforce': over many one-step samples from a categorical generator, the score-function
    gradient (batch-mean baseline) agrees with the exact gradient of E[-log D(x)], computed by enumerating
    the classes; the straight-through estimator is a different (biased) direction on the same problem."""
    K = 5
    w = jnp.array([1.5, -1.0, 0.3, 2.0, -2.0])  # a fixed critic: score = w[token]

    def generate(g, batch, key):
        logits = jnp.broadcast_to(g["logits"], (batch.shape[0], 1, K))
        from metamusic.models.gan import gumbel_straight_through

        return gumbel_straight_through(logits, jax.random.gumbel(key, logits.shape), 1.0), jnp.zeros(())

    def critic(d, x, batch):
        return (x[:, 0] * d["w"]).sum(-1)

    def log_prob(g, fake, batch):
        return (jax.nn.log_softmax(g["logits"]) * fake[:, 0]).sum(-1)

    params = {"g": {"logits": jnp.array([0.2, -0.5, 0.1, 0.0, 0.4])}, "d": {"w": w}}
    loss = adversarial.make_loss(generate, critic, lambda b: b, estimator="reinforce", log_prob=log_prob)
    batch = jax.nn.one_hot(jnp.zeros((20000, 1), jnp.int32), K)
    est = jax.grad(lambda g: loss({"g": g, "d": params["d"]}, batch, jax.random.PRNGKey(0))[1]["g_adv_term"])(
        params["g"])["logits"]
    exact = jax.grad(lambda g: (jax.nn.softmax(g["logits"]) * jax.nn.softplus(-w)).sum())(params["g"])["logits"]
    cos = float(est @ exact / (jnp.linalg.norm(est) * jnp.linalg.norm(exact)))
    assert cos > 0.98, (est, exact)
    np.testing.assert_allclose(est, exact, atol=0.15 * float(jnp.abs(exact).max()))
    # the reported g_adv is the verdict itself (mean -log D of the samples), not the surrogate
    aux = loss(params, batch, jax.random.PRNGKey(0))[1]
    np.testing.assert_allclose(float(aux["g_adv"]), float((jax.nn.softmax(params["g"]["logits"]) *
                                                           jax.nn.softplus(-w)).sum()), rtol=0.03)


def test_logged_game_statistics_separate_the_penalty_and_measure_the_critic():
    """d_cls is the classification loss without the R1 term, d_acc the share classified right, the gap the
    mean real-minus-fake score; grad_norm_ratio is 0 with the adversarial term off and positive with it on."""
    generate, critic, real_inputs, params = _toy()
    batch, key = _real(8), jax.random.PRNGKey(1)
    loss_fn = adversarial.make_loss(generate, critic, real_inputs, mle_weight=0.5, r1_weight=1.0)
    aux = loss_fn(params, batch, key)[1]
    np.testing.assert_allclose(float(aux["d_loss"]), float(aux["d_cls"] + aux["penalty"]), rtol=1e-6)
    assert float(aux["penalty"]) > 0
    fake = generate(params["g"], batch, jax.random.split(key)[0])[0]
    s_r, s_f = critic(params["d"], batch, batch), critic(params["d"], fake, batch)
    np.testing.assert_allclose(float(aux["d_acc"]), 0.5 * (float((s_r > 0).mean()) + float((s_f < 0).mean())))
    np.testing.assert_allclose(float(aux["gap"]), float(s_r.mean() - s_f.mean()), rtol=1e-5)
    assert float(adversarial.grad_norm_ratio(loss_fn, params, batch, key)) > 0
    off = adversarial.make_loss(generate, critic, real_inputs, mle_weight=0.5, adv_weight=0.0)
    assert float(adversarial.grad_norm_ratio(off, params, batch, key)) == 0.0


def test_simplex_r1_ignores_the_gradient_along_the_all_ones_direction():
    """r1_simplex: a critic that reads only the sum over classes at each step (which one-hot inputs never
    change) has no penalty; one that reads a class does."""
    _, _, real_inputs, _ = _toy()
    batch = _real(4)
    along_ones = lambda d, x, b: x.sum((-1, -2)) * d
    one_class = lambda d, x, b: x[..., 0].sum(-1) * d
    for crit, zero in ((along_ones, True), (one_class, False)):
        sq = adversarial._input_grad_sq(crit, 2.0, batch, batch, simplex=True)
        assert (float(jnp.abs(sq).max()) < 1e-9) == zero
        assert float(adversarial._input_grad_sq(crit, 2.0, batch, batch).min()) > 0  # unprojected: both penalised


def test_player_schedule_moves_each_player_on_its_own_steps():
    """Critic on the first 2 of 3 inner steps, generator on the last 1: the adapted params equal SGD done by
    hand in that order, and differ from the simultaneous loop (the coupling term makes the order matter)."""
    from metamusic.meta import inner

    def loss(p, batch, key):
        a, b = p["g"]["a"], p["d"]["b"]
        return (a - 1.0) ** 2 + (b + 2.0) ** 2 + 3.0 * a * b, {}

    params = {"g": {"a": jnp.asarray(0.5)}, "d": {"b": jnp.asarray(-0.3)}}
    g_lr, d_lr = 0.1, 0.05
    sched = adversarial.player_schedule(params, g_lr, d_lr, g_steps=1, d_steps=2)
    lr3 = sched(3)
    np.testing.assert_allclose(np.asarray(lr3["g"]["a"]), [0.0, 0.0, g_lr])
    np.testing.assert_allclose(np.asarray(lr3["d"]["b"]), [d_lr, d_lr, 0.0])
    got = inner.adapt(loss, params, None, jax.random.PRNGKey(0), steps=3, lrs=sched).params

    a, b = 0.5, -0.3
    for i in range(3):
        ga, gb = 2 * (a - 1.0) + 3.0 * b, 2 * (b + 2.0) + 3.0 * a
        a, b = a - (g_lr if i == 2 else 0.0) * ga, b - (d_lr if i < 2 else 0.0) * gb
    np.testing.assert_allclose([float(got["g"]["a"]), float(got["d"]["b"])], [a, b], rtol=1e-6)
    both = inner.adapt(loss, params, None, jax.random.PRNGKey(0), steps=3,
                       lrs=adversarial.player_lrs(params, g_lr, d_lr)).params
    assert abs(float(both["g"]["a"]) - a) > 1e-3
    # 0 steps for a player: it moves on every step of the loop, whatever its length
    all5 = adversarial.player_schedule(params, g_lr, d_lr, 0, 0)(5)
    np.testing.assert_allclose(np.asarray(all5["g"]["a"]), [g_lr] * 5)
