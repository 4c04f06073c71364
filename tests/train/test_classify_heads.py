"""The classification heads and their losses (relation, prototypical, R2D2, pretraining, contrastive, masked), the feature
regressions and the fine-tuning head: each on known values or a small separable family."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import synth
from configs import relation as rel_cfg
from metamusic import experiments
from metamusic.data import EpisodeSampler, features
from metamusic.eval import classify
from metamusic.experiments import base
from metamusic.experiments import inputs
from metamusic.meta import episodic
from metamusic.meta.outer import init_state, make_outer_step
from metamusic.train.trainer import train


def _cfg(steps=150, algorithm="relation,protonet"):
    c = rel_cfg.get_config()
    c.steps, c.meta.batch, c.log_every, c.eval_every, c.checkpoint_every, c.progress = steps, 4, 50, 0, 50, False
    c.meta.algorithm = algorithm
    c.data.ways, c.data.shots, c.data.queries, c.data.length = 3, 2, 2, 24
    c.data.transpose = 0  # the synthetic styles are defined by absolute pitch sets 3 semitones apart
    c.model.conv.dim, c.model.conv.layers = 32, 2
    c.model.relation_hidden = 32
    c.eval.shots, c.eval.episodes, c.eval.chunk, c.eval.val_tasks, c.eval.tune_episodes = (1, 2), 20, 10, 8, 12
    return c


@pytest.fixture(scope="module")
def corpus():
    return synth.token_corpus()


def test_class_features_on_known_values():
    feats = jnp.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    labels = jnp.array([0, 0, 1, 1])
    np.testing.assert_allclose(episodic.class_features(feats, labels, 2, "sum"), [[4, 0], [0, 6]])
    np.testing.assert_allclose(episodic.class_features(feats, labels, 2, "mean"), [[2, 0], [0, 3]])


def test_relation_scores_relate_summed_class_features_and_labels_are_remapped(corpus):
    exp = experiments.build(_cfg(), corpus)
    params = exp.init_params()
    ep = EpisodeSampler(corpus, corpus.styles, ways=3, shots=2, queries=2, length=24).sample(
        np.random.default_rng(0), 1)
    ep1 = inputs.to_device(ep)._replace(**{f: getattr(inputs.to_device(ep), f)[0] for f in ep._fields})
    assert list(np.asarray(ep1.support_labels)) == [0, 0, 1, 1, 2, 2]  # grouped by class, 0..N-1
    parts = exp.parts.heads
    sc = episodic.relation_scores(parts, params, ep1, 3, "sum")
    s = parts.embed(params, ep1.support, ep1.support_mask, ep1.support_pos)
    q = parts.embed(params, ep1.query, ep1.query_mask, ep1.query_pos)
    by_hand = parts.relate(params, s.reshape(3, 2, -1).sum(1), q)
    assert sc.shape == (6, 3)
    np.testing.assert_allclose(sc, by_hand, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["relation", "protonet", "r2d2", "pretrain", "contrastive"])
def test_loss_falls_on_a_separable_family(corpus, method):
    cfg = _cfg(algorithm=method)
    # every input set trains: rhythm inputs include the music codes
    cfg.model.inputs = {"protonet": "music", "contrastive": "rhythm"}.get(method, "notes")
    exp = experiments.build(cfg, corpus)
    algo, tx = exp.algorithm(method), exp.optimizer(method)
    state = init_state(algo, tx, exp.init_params())
    step = make_outer_step(algo, tx)
    sample = exp.train_sampler(method)  # meta-train styles; pretrain: labels are global style slots
    losses, accs = [], []
    for i in range(150):
        state, m = step(state, sample(i), jax.random.PRNGKey(i))
        losses.append(float(m["loss"]))
        accs.append(float(m["train/accuracy"]))
    assert np.mean(losses[-20:]) < 0.6 * np.mean(losses[:20])
    assert np.mean(accs[-20:]) > 0.8
    if method in ("pretrain", "contrastive"):  # logistic regression on support features, unseen styles
        val = exp.val_eval(method, algo)(state, 150)
        assert float(val["val/accuracy"]) > 0.8, val


def test_feature_loss_teaches_the_encoder_the_hand_made_features_and_the_head_still_learns(corpus):
    """meta.feature_loss: every training episode carries its windows' standardised hand-made features, the
    linear prediction of them from the encoder's features improves, and the head's own task is still learned."""
    cfg = _cfg(algorithm="protonet")
    cfg.meta.feature_loss = 1.0
    exp = experiments.build(cfg, corpus)
    sample = exp.train_sampler("protonet")
    ep = sample(0)
    assert ep.support_target.shape == ep.support.shape[:2] + (features.FEATURE_DIM,)
    raw = features.window_features(np.asarray(ep.query), np.asarray(ep.query_pos), corpus.enc.num_classes,
                                   corpus.enc.min_note)
    raw = raw.reshape(-1, raw.shape[-1])
    target = np.asarray(ep.query_target).reshape(raw.shape)
    moving = np.flatnonzero(raw.std(0) > 0.05)  # (columns that vary in this batch)
    assert len(moving) > 10
    for j in moving:  # the targets are these windows' own features, shifted and scaled per column
        assert np.corrcoef(target[:, j], raw[:, j])[0, 1] > 0.9999, j
    algo, tx = exp.algorithm("protonet"), exp.optimizer("protonet")
    state = init_state(algo, tx, exp.init_params())
    step = make_outer_step(algo, tx)
    mse, accs = [], []
    for i in range(150):
        state, m = step(state, sample(i), jax.random.PRNGKey(i))
        mse.append(float(m["train/feature_mse"]))
        accs.append(float(m["train/accuracy"]))
    assert np.mean(mse[-20:]) < 0.7 * np.mean(mse[:20]), (mse[:5], mse[-5:])
    assert np.mean(accs[-20:]) > 0.8


@pytest.mark.parametrize("head", ["protonet", "r2d2", "relation", "contrastive"])
def test_feature_loss_shares_the_heads_encoder_pass_and_equals_the_two_pass_loss(head):
    """episodic.with_feature_loss encodes the episode's support and query once for the head and the target
    (the contrastive head's random views still get their own passes), and its loss and gradient equal the
    head's loss plus the weighted target error computed with separate passes."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        n, T, V, C, D = 6, 5, 7, 4, 3
        params = {"emb": jnp.asarray(rng.normal(size=(V, C))), "feat": jnp.asarray(rng.normal(size=(C, D))),
                  "rel": jnp.asarray(rng.normal(size=(2 * C,)))}
        calls = []

        def embed(p, tokens, mask, pos):
            calls.append(tokens.shape)
            return jnp.tanh((p["emb"][tokens] * mask[..., None]).sum(1))

        def relate(p, cls, q):
            pair = jnp.concatenate([jnp.broadcast_to(cls[None], (q.shape[0],) + cls.shape),
                                    jnp.broadcast_to(q[:, None], (q.shape[0], cls.shape[0], q.shape[1]))], -1)
            return jax.nn.sigmoid(pair @ p["rel"])

        parts = episodic.Parts(embed=embed, relate=relate, ridge=lambda p: (jnp.log(0.5), 0.0, 0.0),
                               features=lambda p, f: f @ p["feat"],
                               augment=lambda key, t, m, pos: ((t + 1) % V, m, pos))
        labels = jnp.array([0, 0, 1, 1, 2, 2])
        ep = type("Ep", (), dict(support=jnp.asarray(rng.integers(0, V, (n, T))), support_mask=jnp.ones((n, T)),
                                 support_pos=jnp.zeros((n, T), int), support_labels=labels,
                                 query=jnp.asarray(rng.integers(0, V, (n, T))), query_mask=jnp.ones((n, T)),
                                 query_pos=jnp.zeros((n, T), int), query_labels=labels, classes=jnp.arange(3),
                                 support_target=jnp.asarray(rng.normal(size=(n, D))),
                                 query_target=jnp.asarray(rng.normal(size=(n, D)))))()
        key = jax.random.PRNGKey(0)
        make = lambda parts: episodic.head_loss(head, parts, 3, "mean")

        def two_pass(p):
            value, _ = make(parts)(p, ep, key)
            s, q = episodic.episode_features(parts, p, ep)
            return value + 0.7 * 0.5 * (jnp.mean((s @ p["feat"] - ep.support_target) ** 2)
                                        + jnp.mean((q @ p["feat"] - ep.query_target) ** 2))

        calls.clear()
        shared = episodic.with_feature_loss(make, parts, 0.7)
        (value, aux), grad = jax.value_and_grad(lambda p: shared(p, ep, key), has_aux=True)(params)
        assert len(calls) == (4 if head == "contrastive" else 2), calls  # contrastive: 2 views + support, query
        want, want_grad = jax.value_and_grad(two_pass)(params)
        np.testing.assert_allclose(float(value), float(want), rtol=1e-12)
        for k in params:
            np.testing.assert_allclose(np.asarray(grad[k]), np.asarray(want_grad[k]), rtol=1e-9, atol=1e-12)
        assert float(jnp.abs(grad["emb"]).max()) > 1e-3 and float(aux["feature_mse"]) > 0


def test_tune_view_crops_a_contiguous_span_and_transposes_in_range():
    from metamusic.models.encoders import tune_view

    T, n, C = 40, 64, 38
    rng = np.random.default_rng(0)
    tokens = jnp.asarray(rng.integers(0, C, (n, T)))
    lengths = rng.integers(10, T + 1, n)
    mask = jnp.asarray((np.arange(T) < lengths[:, None]).astype(np.float32))
    pos = jnp.zeros((n, T), jnp.int32)
    t2, m2, _ = (np.asarray(x) for x in tune_view(jax.random.PRNGKey(0), tokens, mask, pos, C, 3))
    t = np.asarray(tokens)
    for i in range(n):
        kept = np.flatnonzero(m2[i])
        assert len(kept) >= 0.5 * lengths[i] and np.all(np.diff(kept) == 1) and kept[-1] < lengths[i]
        pitch = (t[i] >= 2) & (t[i] < C)
        mid = (t[i] >= 5) & (t[i] < C - 4)  # pitches no shift of up to 3 moves out of range
        assert np.all(np.abs(t2[i][pitch] - t[i][pitch]) <= 3) and len(set((t2[i] - t[i])[mid])) <= 1
        assert np.all(t2[i][~pitch] == t[i][~pitch]) and np.all((t2[i][pitch] >= 2) & (t2[i][pitch] < C))
    shifts = {int((t2[i] - t[i])[(t[i] >= 5) & (t[i] < C - 4)][0]) for i in range(n)}
    assert len(shifts) > 3  # the views differ between tunes


def test_masked_notes_hide_only_onsets_and_the_encoder_never_reads_a_hidden_pitch(corpus):
    from metamusic.models.encoders import masked_notes

    C = corpus.enc.num_classes
    ep = inputs.to_device(EpisodeSampler(corpus, corpus.styles, ways=3, shots=4, queries=4, length=24).sample(
        np.random.default_rng(0), 8))
    tokens, mask = ep.support.reshape(-1, 24), ep.support_mask.reshape(-1, 24)
    shown, hidden = (np.asarray(x) for x in masked_notes(jax.random.PRNGKey(0), tokens, mask, C))
    t, m = np.asarray(tokens), np.asarray(mask)
    onset = (t >= 2) & (t < C) & (m > 0)
    assert np.all(onset[hidden]) and np.all(shown[hidden] == C) and np.all(shown[~hidden] == t[~hidden])
    assert 0.12 < hidden.sum() / onset.sum() < 0.18, hidden.sum() / onset.sum()  # rate 0.15 of the onsets
    # another pitch at every hidden step changes nothing the encoder reads (its intervals are of what is shown)
    exp = experiments.build(_cfg(algorithm="masked"), corpus)
    params, parts = exp.init_params(), exp.parts.heads
    other = np.where(hidden, 2 + (t - 2 + 5) % (C - 2), t)
    assert np.any(other != t)
    hide = lambda tok: parts.hide(jax.random.PRNGKey(0), jnp.asarray(tok), mask)[0]
    pos = ep.support_pos.reshape(-1, 24)
    np.testing.assert_array_equal(np.asarray(parts.token_logits(params, hide(t), mask, pos)),
                                  np.asarray(parts.token_logits(params, hide(other), mask, pos)))


def test_masked_head_learns_each_styles_pitches_and_its_encoder_tells_unseen_styles_apart(corpus):
    """Each synthetic style draws its notes from its own four pitches, so a hidden note is one of four once the
    style is read from the tune's other notes: the share predicted right rises from chance over the pitch range
    toward 1/4."""
    cfg = _cfg(algorithm="masked")
    exp = experiments.build(cfg, corpus)
    algo, tx = exp.algorithm("masked"), exp.optimizer("masked")
    state = init_state(algo, tx, exp.init_params())
    step = make_outer_step(algo, tx)
    sample = exp.train_sampler("masked")
    losses, accs = [], []
    for i in range(150):
        state, m = step(state, sample(i), jax.random.PRNGKey(i))
        losses.append(float(m["loss"]))
        accs.append(float(m["train/accuracy"]))
    assert np.mean(losses[-20:]) < 0.6 * np.mean(losses[:20]), (losses[:5], losses[-5:])
    assert np.mean(accs[:10]) < 0.1 and np.mean(accs[-20:]) > 0.2, (accs[:5], accs[-5:])
    assert float(exp.val_eval("masked", algo)(state, 150)["val/accuracy"]) > 0.8


def test_ridge_head_solves_ridge_regression_and_its_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.normal(size=(6, 10)))  # 6 support tunes, 10 features: Woodbury is the cheap side
        y = jax.nn.one_hot(jnp.array([0, 0, 1, 1, 2, 2]), 3)
        q = jnp.asarray(rng.normal(size=(4, 10)))
        lam = 0.7
        w = episodic.ridge_solve(x, y, lam)
        primal = jnp.linalg.solve(x.T @ x + lam * jnp.eye(10), x.T @ y)  # (X^T X + lam I)^-1 X^T Y
        np.testing.assert_allclose(np.asarray(w), np.asarray(primal), rtol=1e-9, atol=1e-11)

        def loss(x, lam):
            logits = q @ episodic.ridge_solve(x, y, lam)
            return -jax.nn.log_softmax(logits)[jnp.arange(4), jnp.array([0, 1, 2, 0])].mean()

        gx, gl = jax.grad(loss, argnums=(0, 1))(x, lam)
        eps = 1e-6
        for i, j in ((0, 0), (3, 7), (5, 9)):
            d = jnp.zeros_like(x).at[i, j].set(eps)
            fd = (loss(x + d, lam) - loss(x - d, lam)) / (2 * eps)
            np.testing.assert_allclose(float(gx[i, j]), float(fd), rtol=1e-6, atol=1e-9)
        fd = (loss(x, lam + eps) - loss(x, lam - eps)) / (2 * eps)
        np.testing.assert_allclose(float(gl), float(fd), rtol=1e-6, atol=1e-9)
        assert float(jnp.abs(gx).max()) > 1e-3  # the gradient reaches the features


def test_logistic_regression_and_cosine_heads_on_known_features():
    feats = jnp.array([[3.0, 0.1], [2.0, -0.1], [0.1, 4.0], [-0.1, 1.0]])
    labels = jnp.array([0, 0, 1, 1])
    w, b = episodic.logreg_fit(feats, labels, 2)
    q = episodic.normalize(jnp.array([[5.0, 0.5], [0.2, 3.0]])) * 10.0
    assert list(np.asarray((q @ w + b).argmax(-1))) == [0, 1]
    parts = episodic.Parts(embed=lambda p, t, m, pos: t, relate=None)
    from metamusic.data.episodes import Episodes

    ep = Episodes(feats, None, labels, jnp.array([[1.0, 0.9], [0.0, 2.0]]), None, jnp.array([0, 1]), jnp.arange(2),
                  None, None)
    sc = np.asarray(episodic.cosine_scores(parts, None, ep, 2))
    # class means of the normalised support: ~(1, 0) and ~(0, 1); query 0 is at 42 degrees to class 0
    np.testing.assert_allclose(sc[1], [0.0, 10.0], atol=0.3)
    assert sc[0, 0] > sc[0, 1] and sc[1, 1] > sc[1, 0]


def test_feature_regression_weighs_every_class_alike_when_their_example_counts_differ():
    """--mode=classify fits the regression on every example tune a user gives, and a style of 200 tunes beside
    one of 12 pulled the queries its way (a user's queries taken from the small style were all given to the
    large one). Two Gaussian classes 2 standard deviations apart on one of 20 features: with every tune
    weighted alike, the small class's recall was 0.09; weighted by class it is close to the large one's.
    In an episode of K shots per class the weights are 1, so the fit is the unweighted one to the bit."""
    rng = np.random.default_rng(0)
    d, n_big, n_small = 20, 200, 12
    shift = np.eye(d)[0] * 2.0
    xs = np.concatenate([rng.normal(size=(n_big, d)), rng.normal(size=(n_small, d)) + shift])[None]
    ys = np.array([0] * n_big + [1] * n_small)[None]
    xq = np.concatenate([rng.normal(size=(500, d)), rng.normal(size=(500, d)) + shift])[None]
    pred = features.logreg_predict(xs, ys, xq, 2, l2=10.0)[0]
    recall_big, recall_small = (pred[:500] == 0).mean(), (pred[500:] == 1).mean()
    assert recall_small > 0.5 and recall_big > 0.75, (recall_big, recall_small)  # Bayes rule at equal priors: 0.84
    # balanced: the same logits as the unweighted majorize-minimize iteration written out here
    xs, xq = rng.normal(size=(3, 10, 30)), rng.normal(size=(3, 4, 30))
    ys = np.tile(np.repeat(np.arange(2), 5), (3, 1))
    mu, sd = xs.mean(1, keepdims=True), xs.std(1, keepdims=True) + 1e-3
    zs, zq = (xs - mu) / sd, (xq - mu) / sd
    u, s, vt = np.linalg.svd(zs, full_matrices=False)
    z = np.concatenate([u * s[:, None, :], np.ones((3, 10, 1))], -1)
    q = np.concatenate([zq @ np.swapaxes(vt, 1, 2), np.ones((3, 4, 1))], -1)
    pen = 10.0 * np.append(np.ones(z.shape[-1] - 1), 0.0)[:, None]
    step = np.linalg.inv(0.5 * np.swapaxes(z, 1, 2) @ z + np.diag(pen[:, 0]))
    c, y = np.zeros((3, z.shape[-1], 2)), np.eye(2)[ys]
    for _ in range(1000):
        pr = np.exp(z @ c - (z @ c).max(-1, keepdims=True))
        delta = step @ (np.swapaxes(z, 1, 2) @ (pr / pr.sum(-1, keepdims=True) - y) + pen * c)
        c -= delta
        if np.abs(delta).max() < 1e-8:
            break
    np.testing.assert_array_equal(features.logreg_logits(xs, ys, xq, 2, l2=10.0), q @ c)


def test_feature_regression_over_every_encoder_uses_signal_that_each_block_alone_lacks():
    """Two encoders, each separating only half of 4 classes: 'all+features' and 'all+logreg' (both blocks
    in one regression, with and without the hand-made block) separate all 4, each '<method>+features' and
    '<method>+logreg' row only the classes its block sees."""
    rng = np.random.default_rng(0)
    B, K, Q, N = 40, 5, 5, 4

    def block(labels, sees):  # a feature that is the class's code when it sees the class, noise otherwise
        code = np.where(np.isin(labels, sees)[..., None], np.eye(N)[labels] * 3.0, 0.0)
        return code + rng.normal(0, 0.3, labels.shape + (N,))

    ys = np.tile(np.repeat(np.arange(N), K), (B, 1))
    yq = np.tile(np.repeat(np.arange(N), Q), (B, 1))
    learned = {"a": (block(ys, [0, 1]), block(yq, [0, 1])), "b": (block(ys, [2, 3]), block(yq, [2, 3]))}
    hand = (rng.normal(size=(B, N * K, 3)), rng.normal(size=(B, N * Q, 3)))  # carries nothing
    sets = classify.feature_sets(learned, hand)
    assert list(sets) == ["features+logreg", "a+features", "b+features", "a+logreg", "b+logreg", "all+logreg",
                          "all+features"]
    assert sets["all+features"][0].shape == (B, N * K, 2 * N + 3)
    for m in ("a", "b"):  # one encoder's features alone, support and query
        assert all(np.array_equal(x, y) for x, y in zip(sets[f"{m}+logreg"], learned[m]))
    assert not any(classify.hand_made(r) for r in ("a+logreg", "all+logreg"))
    assert all(classify.hand_made(r) for r in ("features+logreg", "a+features", "all+features"))
    assert sets["all+logreg"][0].shape == (B, N * K, 2 * N)
    acc = {r: float((features.logreg_predict(xs, ys, xq, N) == yq).mean()) for r, (xs, xq) in sets.items()}
    assert acc["all+features"] > 0.95 and acc["all+logreg"] > 0.95, acc
    for r in ("a+features", "b+features", "a+logreg", "b+logreg"):  # half the classes right, the other two at chance
        assert 0.6 < acc[r] < 0.85, acc
    assert acc["features+logreg"] < 0.4, acc
    assert list(classify.feature_sets({"a": learned["a"]}, hand)) == ["features+logreg", "a+features", "a+logreg"]


def _meter_corpus(seed=0):
    """Styles that differ only in meter: the same random pitches and rhythm, bars of 12, 16 or 9 steps."""
    from metamusic.data import Corpus, EncodingConfig, SplitConfig
    from metamusic.data.melody import meter_positions

    enc = EncodingConfig()
    rng = np.random.default_rng(seed)
    bars = [12, 16, 9, 12, 16, 9, 12, 16, 9]
    tunes, pos, style_of = [], [], []
    for k, bar in enumerate(bars):
        for _ in range(24):
            t = np.where(rng.random(48) < 0.5, rng.integers(2, 20, 48), 0)
            tunes.append(np.concatenate([[enc.bos], t]))
            pos.append(meter_positions(49, bar))
            style_of.append(k)
    styles = [f"bar{b}-{k}" for k, b in enumerate(bars)]
    split_of = {s: ("test" if i < 3 else "val" if i < 6 else "train") for i, s in enumerate(styles)}
    lengths = np.array([len(t) for t in tunes])
    pool = np.tile(np.array([0, 1], np.int8), len(tunes) // 2)
    return Corpus(np.concatenate(tunes).astype(np.int8), np.concatenate([[0], np.cumsum(lengths)]),
                  np.array(style_of, np.int32), pool, styles, split_of,
                  [{"hash": str(i)} for i in range(len(tunes))], {}, enc, SplitConfig(), "", np.concatenate(pos))


@pytest.mark.parametrize("bar_position", [True, False])
def test_styles_that_differ_only_in_meter_are_told_apart_with_bar_position(bar_position):
    corpus = _meter_corpus()
    cfg = _cfg(algorithm="protonet")
    cfg.data.length, cfg.data.bar_position, cfg.data.transpose = 49, bar_position, 0
    exp = experiments.build(cfg, corpus)
    algo, tx = exp.algorithm("protonet"), exp.optimizer("protonet")
    state = init_state(algo, tx, exp.init_params())
    step = make_outer_step(algo, tx)
    sample = exp.train_sampler("protonet")
    for i in range(120):
        state, _ = step(state, sample(i), jax.random.PRNGKey(i))
    acc = float(exp.val_eval("protonet", algo)(state, 120)["val/accuracy"])  # 3-way, unseen styles
    if bar_position:
        assert acc > 0.9, acc
    else:
        assert acc < 0.6, acc  # chance is 1/3: without the channel the styles look alike
    sampler = EpisodeSampler(corpus, corpus.styles_in("test"), ways=3, shots=5, queries=4, length=49,
                             pool="support/query")
    eps = sampler.sample(np.random.default_rng(1), 30)
    if not bar_position:  # the same episodes without positions: the hand-made meter features are empty too
        eps = eps._replace(support_pos=np.full_like(eps.support_pos, 64), query_pos=np.full_like(eps.query_pos, 64))
    hs, hq = classify.hand_features(eps, corpus.enc)
    feat_acc = float((features.logreg_predict(hs, eps.support_labels, hq, 3) == eps.query_labels).mean())
    # with positions: 0.92 before the rhythm block, 0.84 with it (its beat patterns are noise on these
    # random onsets, and the regression standardises every column); chance 1/3
    assert (feat_acc > 0.8) if bar_position else (feat_acc < 0.6), feat_acc


def test_residual_relation_on_a_frozen_protonet_encoder_starts_as_it_and_trains_only_its_module(corpus):
    """meta.init=protonet, model.relation_prior=residual, meta.freeze_encoder: the relation network starts
    from the trained prototypical net's params, predicts exactly what the prototypical net predicts
    before training (its module's output is zero), and training changes its module and distance scale
    while the encoder stays the prototypical net's, bit for bit."""
    cfg = _cfg(algorithm="protonet,relation")
    cfg.meta.init, cfg.model.relation_prior, cfg.meta.freeze_encoder = "protonet", "residual", True
    exp = experiments.build(cfg, corpus)
    assert exp.methods == ("protonet", "relation")
    assert exp.start_from("relation") == "protonet" and exp.start_from("protonet") is None
    states = {}
    for name, steps in (("protonet", 60), ("relation", 80)):
        algo, tx = exp.algorithm(name), exp.optimizer(name)
        start = states["protonet"].meta["params"] if name == "relation" else exp.init_params()
        state = init_state(algo, tx, start)
        step = make_outer_step(algo, tx)
        sample = exp.train_sampler(name)
        losses = []
        for i in range(steps):
            state, m = step(state, sample(i), jax.random.PRNGKey(i))
            losses.append(float(m["loss"]))
        states[name] = state
    assert np.mean(losses[-20:]) < 0.8 * np.mean(losses[:20]), (losses[:5], losses[-5:])
    proto, rel = states["protonet"].meta["params"]["params"], states["relation"].meta["params"]["params"]
    for a, b in zip(jax.tree.leaves(proto["enc"]), jax.tree.leaves(rel["enc"])):
        np.testing.assert_array_equal(a, b)  # frozen: the encoder is the prototypical net's
    assert not np.array_equal(proto["rel_out"]["kernel"], rel["rel_out"]["kernel"])  # the module trained
    assert float(rel["prior_scale"]) != float(proto["prior_scale"])

    eps = inputs.to_device(EpisodeSampler(corpus, corpus.styles, ways=3, shots=2, queries=2, length=24).sample(
        np.random.default_rng(1), 8))
    parts = exp.parts.heads
    for i in range(8):
        ep = jax.tree.map(lambda x: x[i], eps)
        start = episodic.relation_scores(parts, states["protonet"].meta["params"], ep, 3, "mean")
        protonet = episodic.proto_logits(parts, states["protonet"].meta["params"], ep, 3, "mean")
        np.testing.assert_array_equal(np.argmax(start, -1), np.argmax(protonet, -1))


def test_a_head_joins_a_run_of_other_heads_and_some_heads_of_a_run_restore_alone(corpus, tmp_path):
    """The parameter tree holds R2D2's ridge scale only when an R2D2 head is trained (and the pretraining layer
    only with a pretraining head). A head trained in a run with another list of heads restores by path: a part
    it lacks comes from init, a part the run lacks is left out; any other difference is still refused."""
    from metamusic.errors import MetamusicError

    flat = lambda t: {jax.tree_util.keystr(p): np.asarray(x) for p, x in jax.tree_util.tree_flatten_with_path(t)[0]}
    alone_exp = experiments.build(_cfg(6, "protonet"), corpus)
    both_exp = experiments.build(_cfg(6, "protonet,r2d2"), corpus)
    wd = str(tmp_path / "run")
    train(alone_exp, wd, "protonet")
    trained = flat(base.restore(alone_exp, wd, "protonet")["params"])
    stats = {}
    train(both_exp, wd, "protonet", stats)  # the same workdir with R2D2 added: protonet resumes at its end
    assert stats["start"] == 6
    joined, init = flat(base.restore(both_exp, wd, "protonet")["params"]), flat(both_exp.init_params())
    assert set(joined) - set(trained) == {"['params']['ridge']"}
    assert np.array_equal(joined["['params']['ridge']"], init["['params']['ridge']"])
    assert all(np.array_equal(joined[k], v) for k, v in trained.items())
    assert not np.array_equal(trained["['params']['enc']['conv_0']['kernel']"],
                              init["['params']['enc']['conv_0']['kernel']"])  # (it trained)
    train(both_exp, wd, "r2d2")
    r2d2 = flat(base.restore(both_exp, wd, "r2d2")["params"])
    assert not np.array_equal(r2d2["['params']['ridge']"], init["['params']['ridge']"])  # R2D2 trains its own
    # the other way: the two-head run's protonet into a protonet-only run, its ridge scale left out
    assert flat(base.restore(alone_exp, wd, "protonet")["params"]).keys() == trained.keys()
    other = _cfg(6, "protonet")
    other.model.conv.dim = 16
    with pytest.raises(MetamusicError, match="another config"):
        base.restore(experiments.build(other, corpus), wd, "protonet")


def test_finetune_head_starts_from_the_logistic_regression_and_fits_the_support():
    from metamusic.data.episodes import Episodes

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 6)) * 2
    lab_s, lab_q = np.repeat(np.arange(3), 3), np.repeat(np.arange(3), 4)
    xs = jnp.asarray(centers[lab_s] + rng.normal(size=(9, 6)), jnp.float32)
    xq = jnp.asarray(centers[lab_q] + rng.normal(size=(12, 6)), jnp.float32)
    parts = episodic.Parts(embed=lambda p, t, m, pos: t @ p["w"], relate=None)
    params = {"w": jnp.asarray(rng.normal(size=(6, 6)) * 0.3, jnp.float32)}  # a poor "pretrained" encoder
    ep = Episodes(xs, None, jnp.asarray(lab_s), xq, None, jnp.asarray(lab_q), jnp.arange(3), None, None)
    np.testing.assert_allclose(np.asarray(episodic.finetune_scores(parts, params, ep, 3, steps=0)),
                               np.asarray(episodic.logreg_scores(parts, params, ep, 3)), rtol=1e-5, atol=1e-5)

    def support_loss(steps):  # the support cross-entropy after fine-tuning, from the query-side scores' twin
        e = ep._replace(query=xs, query_labels=jnp.asarray(lab_s))
        logits = episodic.finetune_scores(parts, params, e, 3, steps=steps, lr=1e-2)
        return float(-jax.nn.log_softmax(logits)[jnp.arange(9), lab_s].mean())

    assert support_loss(30) < 0.7 * support_loss(0)


def test_finetune_row_predicts_one_episode_per_call_as_the_vmapped_row_does(corpus):
    """The fine-tuning rows (episodic.COSTLY) are predicted one episode per compiled call; each episode's
    labels are those of the whole batch under vmap (the earlier form), in the same order, and fine-tuning
    moved them away from the plain logistic regression's on some episode."""
    cfg = _cfg(algorithm="pretrain")
    cfg.model.conv.dim, cfg.model.conv.layers = 16, 1  # (compile time)
    exp = experiments.build(cfg, corpus)
    params = exp.init_params()
    eps = EpisodeSampler(corpus, corpus.styles, ways=3, shots=2, queries=2, length=24).sample(
        np.random.default_rng(3), 3)
    d = inputs.to_device(eps)
    with jax.enable_x64(True):  # so that float summation order cannot flip a close argmax
        p64 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params)
        got = np.asarray(exp.parts.predictor("pretrain+finetune", 3)(p64, d))
        scores = lambda name: jax.jit(jax.vmap(lambda e: exp.parts.scores(name, p64, e, 3)))(d)
        vmapped = np.asarray(scores("pretrain+finetune"))
        logreg = np.asarray(scores("pretrain"))
    assert got.shape == (3, 6)
    np.testing.assert_array_equal(got, vmapped.argmax(-1))
    assert not np.allclose(vmapped, logreg, atol=1e-3)
