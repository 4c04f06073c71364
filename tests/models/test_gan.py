"""Generator and critic: shapes, valid tokens, straight-through gradients."""

import jax
import jax.numpy as jnp
import numpy as np

from metamusic.models.gan import Critic, Generator, gumbel_straight_through, masked_nll

V, C, BOS = 40, 38, 39


def _gen():
    g = Generator(V, C, BOS, embed_dim=8, hidden=16, z_dim=4)
    z = jnp.zeros((3, 4))
    params = g.init(jax.random.PRNGKey(0), z, jnp.zeros((3, 12, C)))
    return g, params


def test_generator_emits_one_hot_melody_tokens_only():
    g, params = _gen()
    z = jax.random.normal(jax.random.PRNGKey(1), (5, 4))
    noise = jax.random.gumbel(jax.random.PRNGKey(2), (5, 12, C))
    y = np.asarray(g.apply(params, z, noise))
    assert y.shape == (5, 12, C)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-6)
    assert set(np.unique(y.round(6))) <= {0.0, 1.0}
    tok = y.argmax(-1)
    assert tok.min() >= 0 and tok.max() < C  # never PAD (38) or BOS (39)
    # different noise, different melodies
    y2 = np.asarray(g.apply(params, z, jax.random.gumbel(jax.random.PRNGKey(3), (5, 12, C))))
    assert (y2.argmax(-1) != tok).any()


def test_teacher_forced_logits_match_a_separate_pass_and_nll_is_finite():
    g, params = _gen()
    z = jax.random.normal(jax.random.PRNGKey(1), (2, 4))
    tokens = jnp.array([[BOS, 2, 0, 5, 1, 7, 0, 0, 9, 2, 0, 38], [3, 0, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]])
    noise = jax.random.gumbel(jax.random.PRNGKey(2), (2, 12, C))
    fake, logits = g.apply(params, z, noise, tokens=tokens)
    # the free-running rows are unaffected by the teacher rows sharing the scan
    np.testing.assert_allclose(fake, g.apply(params, z, noise), atol=1e-6)
    assert logits.shape == (2, 12, C)
    mask = jnp.ones((2, 12))
    nll = float(masked_nll(logits, tokens, mask, C))
    assert 0 < nll < 10
    # PAD and BOS targets are excluded: changing the logits there changes nothing
    bumped = logits.at[0, 0].add(5.0).at[0, 11].add(5.0)
    np.testing.assert_allclose(float(masked_nll(bumped, tokens, mask, C)), nll, rtol=1e-6)


def test_straight_through_gradient_is_the_tempered_softmax_gradient():
    logits = jnp.array([0.3, -1.0, 2.0, 0.5])
    noise = jnp.array([0.1, 0.4, -0.2, 0.0])
    w = jnp.array([1.0, -2.0, 0.5, 3.0])
    tau = 0.7
    y = gumbel_straight_through(logits, noise, tau)
    np.testing.assert_array_equal(np.asarray(y), np.eye(4)[2])  # forward: the argmax one-hot
    g_st = jax.grad(lambda l: gumbel_straight_through(l, noise, tau) @ w)(logits)
    g_soft = jax.grad(lambda l: jax.nn.softmax((l + noise) / tau) @ w)(logits)
    np.testing.assert_allclose(g_st, g_soft, rtol=1e-6)


def test_generator_gradient_reaches_every_parameter_through_the_critic():
    g, gp = _gen()
    d = Critic(dim=8, layers=2)
    x = jnp.zeros((3, 12, C))
    dp = d.init(jax.random.PRNGKey(4), x, jnp.ones((3, 12)))
    z = jax.random.normal(jax.random.PRNGKey(1), (3, 4))
    noise = jax.random.gumbel(jax.random.PRNGKey(2), (3, 12, C))
    grads = jax.grad(lambda p: d.apply(dp, g.apply(p, z, noise), jnp.ones((3, 12))).sum())(gp)
    norms = {jax.tree_util.keystr(k): float(jnp.abs(v).sum()) for k, v in jax.tree_util.tree_leaves_with_path(grads)}
    assert all(n > 0 for n in norms.values()), norms


def test_critic_scores_one_finite_value_per_sequence():
    d = Critic(dim=8, layers=2)
    x = jax.nn.one_hot(jnp.array([[2, 0, 3, 0, 4, 0], [5, 0, 0, 1, 6, 0]]), C)
    mask = jnp.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1.0]])
    dp = d.init(jax.random.PRNGKey(0), x, mask)
    s = d.apply(dp, x, mask)
    assert s.shape == (2,)
    assert np.isfinite(np.asarray(s)).all()


def _lm(**kw):
    from metamusic.models.melody_lm import LSTMLM

    bar = kw.pop("bar_positions", 6)
    m = LSTMLM(vocab_size=V, embed_dim=8, hidden=8, impl="fast", bar_positions=bar, **kw)
    x = jnp.zeros((1, 12), jnp.int32)
    p = m.init(jax.random.PRNGKey(0), x, x if bar else None)
    # a trained-looking LM: random weights everywhere, the context and its FiLM included (they start at zero)
    leaves, tree = jax.tree.flatten(p)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    p = jax.tree.unflatten(tree, [a + 0.3 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)])
    return m, p


def test_lm_generator_draws_the_melody_lms_own_samples():
    """lm_generate reads the LM's parameters directly (a faster loop); each token it draws must be the
    argmax of the LM's own logits (model.apply, teacher-forced on the drawn prefix) plus the Gumbel noise,
    for one and two layers, the head FiLM, and no position channel."""
    from metamusic.models.gan import lm_generate

    for kw in (dict(layers=1, context_dim=4), dict(layers=2, context_dim=4, context_output=True),
               dict(layers=1, bar_positions=0)):
        m, p = _lm(**kw)
        N, T = 5, 16
        pos = jax.random.randint(jax.random.PRNGKey(2), (N, T), 0, 7) if m.bar_positions else None
        noise = jax.random.gumbel(jax.random.PRNGKey(3), (N, T, C))
        y = lm_generate(m, p, noise, pos, bos=BOS)
        np.testing.assert_allclose(np.asarray(y.sum(-1)), 1.0, atol=1e-6)
        toks = y.argmax(-1)
        logits = m.apply(p, jnp.concatenate([jnp.full((N, 1), BOS), toks[:, :-1]], 1), pos)[..., :C]
        # the drawn token scores the maximum of logits + noise. lm_generate and model.apply compute the
        # logits by different code paths, equal only to float32 rounding, so a near-tie may break either
        # way: the chosen token's score must be within rounding of the best one (and is almost always it).
        scores = np.asarray(logits + noise)
        chosen = np.take_along_axis(scores, np.asarray(toks)[..., None], -1)[..., 0]
        np.testing.assert_allclose(chosen, scores.max(-1), rtol=0, atol=1e-4)
        assert (np.asarray(jnp.argmax(logits + noise, -1)) == np.asarray(toks)).mean() > 0.95


def test_lm_generator_gradient_reaches_the_lm_through_the_critic():
    from metamusic.models.gan import lm_generate

    m, lp = _lm(layers=1, context_dim=4)
    d = Critic(dim=8, layers=2)
    dp = d.init(jax.random.PRNGKey(4), jnp.zeros((3, 12, C)), jnp.ones((3, 12)))
    noise = jax.random.gumbel(jax.random.PRNGKey(2), (3, 12, C))
    pos = jnp.tile(jnp.arange(12) % 4, (3, 1))
    grads = jax.grad(lambda p: d.apply(dp, lm_generate(m, p, noise, pos, bos=BOS), jnp.ones((3, 12))).sum())(lp)
    g = grads["params"]
    for part in ("embed", "bar_pos", "context", "context_film", "OptimizedLSTMCell_0", "head"):
        assert sum(float(jnp.abs(x).sum()) for x in jax.tree.leaves(g[part])) > 0, part


def test_lm_generator_reads_a_forced_prefix_then_draws_from_the_lm_conditioned_on_it():
    """gan.prefix: the first n_forced steps are the given real tokens (fed back as the LM's input), and
    every later token is the argmax of the LM's own logits, teacher-forced on that prefix, plus the noise."""
    from metamusic.models.gan import lm_generate

    m, p = _lm(layers=1, context_dim=4)
    N, T, P = 5, 16, 6
    pos = jax.random.randint(jax.random.PRNGKey(2), (N, T), 0, 7)
    noise = jax.random.gumbel(jax.random.PRNGKey(3), (N, T, C))
    real = jax.random.randint(jax.random.PRNGKey(5), (N, T), 0, C)
    y = lm_generate(m, p, noise, pos, bos=BOS, forced=jax.nn.one_hot(real, C), n_forced=P)
    toks = np.asarray(y.argmax(-1))
    np.testing.assert_array_equal(toks[:, :P], np.asarray(real[:, :P]))
    free = lm_generate(m, p, noise, pos, bos=BOS)
    assert (np.asarray(free.argmax(-1))[:, P:] != toks[:, P:]).any()  # the prefix changes what follows
    logits = m.apply(p, jnp.concatenate([jnp.full((N, 1), BOS), jnp.asarray(toks[:, :-1])], 1), pos)[..., :C]
    scores = np.asarray(logits + noise)[:, P:]
    chosen = np.take_along_axis(scores, toks[:, P:, None], -1)[..., 0]
    np.testing.assert_allclose(chosen, scores.max(-1), rtol=0, atol=1e-4)
    # the forced steps carry no gradient to the LM; the free ones do
    g = jax.grad(lambda q: (lm_generate(m, q, noise, pos, bos=BOS, forced=jax.nn.one_hot(real, C), n_forced=T)
                            * jnp.arange(C)).sum())(p)
    assert sum(float(jnp.abs(x).sum()) for x in jax.tree.leaves(g)) == 0.0


def test_dilated_critic_sees_as_far_as_its_receptive_field_says():
    """Changing one input step moves the score of a critic whose pooled features start at position t only
    if the step is within its receptive field: probed through the gradient of one output position."""
    import flax.linen as nn

    from metamusic.models.gan import receptive_field

    class Trunk(nn.Module):  # the critic's conv stack, without pooling
        dilated: bool

        @nn.compact
        def __call__(self, x):
            h = nn.Dense(8, use_bias=False)(x)
            for i in range(4):
                rate = 2 ** i if self.dilated else 1
                h = nn.leaky_relu(nn.Conv(8, (5,), kernel_dilation=rate)(h), 0.2)
            return h

    T = 160
    x = jax.nn.one_hot(jax.random.randint(jax.random.PRNGKey(0), (1, T), 0, C), C)
    for dilated in (False, True):
        t = Trunk(dilated)
        p = t.init(jax.random.PRNGKey(1), x)
        g = jax.grad(lambda xx: t.apply(p, xx)[0, T // 2].sum())(x)
        seen = np.flatnonzero(np.abs(np.asarray(g[0])).sum(-1) > 0)
        assert seen.max() - seen.min() + 1 == receptive_field(4, 5, dilated)
    assert receptive_field(4, 5, True) == 61 and receptive_field(3, 5, False) == 13
