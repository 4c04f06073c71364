"""The classification encoders' music inputs and the relation module's distance prior, on known values."""

import jax
import jax.numpy as jnp
import numpy as np

from metamusic.data import EncodingConfig, features
from metamusic.data.melody import MAX_POS, meter_positions
from metamusic.models.encoders import BEAT_STEPS, IOI_CODES, IOI_RATIOS, music_codes, rhythm_codes
from metamusic.models.relation import FewShotClassifier

ENC = EncodingConfig()


def _tune(pitches, durations):
    t = [ENC.bos]  # as in the corpus: positions start after BOS (melody.meter_positions)
    for p, d in zip(pitches, durations):
        t += [p - ENC.min_note + 2] + [0] * (d - 1)
    return np.array(t)


def test_music_codes_pooled_are_the_hand_made_histograms():
    """A masked mean of one-hot codes is a histogram: the degree and onset-position codes give exactly
    the scale-degree and onset-position blocks of `data.features.tune_features`, and the inter-onset
    codes its inter-onset histogram plus the last note's length."""
    rng = np.random.default_rng(0)
    pitches = rng.integers(55, 80, 30)
    durations = rng.choice([1, 2, 3, 4, 6, 20], 30)
    t = _tune(pitches, durations)
    pos = meter_positions(len(t), 12)
    T = len(t) + 7  # padding after the tune
    tok = np.concatenate([t, np.zeros(T - len(t), t.dtype)])[None]
    mask = (np.arange(T) < len(t)).astype(np.float32)[None]
    p = np.concatenate([pos, np.full(T - len(t), MAX_POS)])[None]
    degree, ioi, at = (np.asarray(c)[0] for c in music_codes(jnp.asarray(tok), jnp.asarray(mask), ENC.num_classes,
                                                               jnp.asarray(p), MAX_POS + 1))
    onset = degree > 0
    assert onset.sum() == 30 and not onset[len(t):].any()
    f = features.tune_features(t, pos, ENC.num_classes, ENC.min_note)
    n_hist = 12 + 25
    ioi_block = f[n_hist: n_hist + features.IOI_BINS]
    pos_block = f[n_hist + features.IOI_BINS: n_hist + features.IOI_BINS + features.POS_BINS]
    tonal = f[-24 - features.RHYTHM_DIM:]
    np.testing.assert_allclose(np.bincount(degree[onset] - 1, minlength=12) / 30, tonal[:12])
    np.testing.assert_allclose(np.bincount(at[onset] - 1, minlength=features.POS_BINS)[:features.POS_BINS] / 30,
                               pos_block)
    counts = np.bincount(ioi[onset] - 1, minlength=IOI_CODES).astype(float)
    counts[min(durations[-1], IOI_CODES) - 1] -= 1  # the last note's length: not an inter-onset interval
    np.testing.assert_allclose(counts / 29, ioi_block)


def test_rhythm_codes_are_the_hand_made_rhythm_block_per_onset():
    """The rhythm codes count what `data.features.rhythm_features` counts: the ratio codes of the onsets
    with a true inter-onset interval on both sides give its ratio histogram, and the beat codes of the
    onsets that start a beat give its beat patterns (of the beats that start with a note), in several
    meters and pickups. Padding and BOS carry no code."""
    assert np.allclose(IOI_RATIOS, features.IOI_RATIOS) and BEAT_STEPS == features.BEAT_STEPS
    rng = np.random.default_rng(0)
    for steps_per_bar, phase in ((16, 3), (12, 0), (6, 5), (8, 1)):
        durations = rng.choice([1, 2, 3, 4, 6], 40)
        t = _tune(rng.integers(55, 80, 40), durations)
        pos = meter_positions(len(t), steps_per_bar, phase)
        T = len(t) + 7
        tok = np.concatenate([t, np.zeros(T - len(t), t.dtype)])[None]
        mask = (np.arange(T) < len(t)).astype(np.float32)[None]
        p = np.concatenate([pos, np.full(T - len(t), MAX_POS)])[None]
        ratio, beat = (np.asarray(c)[0] for c in rhythm_codes(jnp.asarray(tok), jnp.asarray(mask), ENC.num_classes,
                                                              jnp.asarray(p), MAX_POS + 1))
        f = features.rhythm_features(t, pos, ENC.num_classes)
        onsets = np.flatnonzero((t >= 2) & (t < ENC.num_classes))
        assert not ratio[len(t):].any() and not beat[len(t):].any() and ratio[0] == 0 and beat[0] == 0
        assert ratio[onsets[0]] == 0 and (ratio[onsets[1:]] > 0).all()
        inner = ratio[onsets[1:-1]] - 1  # the last onset's interval runs to the tune's end
        np.testing.assert_allclose(np.bincount(inner, minlength=9) / len(inner), f[16:])
        starts = [i for i in onsets if pos[i] % BEAT_STEPS == 0 and beat[i] > 0]
        counts = np.bincount([beat[i] - 1 for i in starts], minlength=16).astype(float)
        with_note = f[:16] * (np.arange(16) >= 8)  # patterns whose first step is an onset
        np.testing.assert_allclose(counts / counts.sum(), with_note / with_note.sum())


def test_relation_prior_scores_by_distance_when_the_module_is_silent():
    """With relation_prior=euclidean and the module's output layer zeroed, the relation scores fall with
    the squared distance: the same ranking as the prototypical net's."""
    model = FewShotClassifier(ENC.vocab_size, ENC.num_classes, "conv", (("dim", 8), ("layers", 1)), 16, 2, "rich",
                              "euclidean")
    tok = jnp.zeros((2, 8), jnp.int32)
    params = model.init(jax.random.PRNGKey(0), tok, jnp.ones((2, 8)))
    params["params"]["rel_out"]["kernel"] = jnp.zeros_like(params["params"]["rel_out"]["kernel"])
    classes = jax.random.normal(jax.random.PRNGKey(1), (5, 8))
    queries = jax.random.normal(jax.random.PRNGKey(2), (7, 8))
    scores = model.apply(params, classes, queries, method=FewShotClassifier.relate)
    d2 = ((queries[:, None] - classes[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(np.argsort(-np.asarray(scores), -1), np.argsort(np.asarray(d2), -1))
    # without the prior the same silent module scores every pair alike
    plain = FewShotClassifier(ENC.vocab_size, ENC.num_classes, "conv", (("dim", 8), ("layers", 1)), 16, 2, "rich")
    pp = plain.init(jax.random.PRNGKey(0), tok, jnp.ones((2, 8)))
    pp["params"]["rel_out"]["kernel"] = jnp.zeros_like(pp["params"]["rel_out"]["kernel"])
    flat = np.asarray(plain.apply(pp, classes, queries, method=FewShotClassifier.relate))
    np.testing.assert_allclose(flat, flat[0, 0])


def test_pool_inputs_puts_the_mean_input_embedding_beside_the_output_and_leaves_the_output_as_it_was():
    """model.pool=output+inputs: the first half of the features is the encoder's own output (the same params
    give the same numbers), the second the masked mean of the token, interval and onset embeddings, computed
    here by hand from the embedding tables; padding reaches neither."""
    from metamusic.models.encoders import ENCODERS, note_features

    rng = np.random.default_rng(0)
    tokens = jnp.asarray(rng.integers(2, 40, (3, 20)), jnp.int32)
    mask = jnp.asarray(np.arange(20)[None] < np.array([[20], [13], [6]]), jnp.float32)
    for name in ("conv", "transformer"):
        kw = dict(dim=16, layers=2)
        plain = ENCODERS[name](48, 40, **kw)
        pooled = ENCODERS[name](48, 40, pool_inputs=True, **kw)
        params = plain.init(jax.random.PRNGKey(1), tokens, mask)
        out = pooled.apply(params, tokens, mask)
        assert out.shape == (3, 32)
        np.testing.assert_allclose(out[:, :16], plain.apply(params, tokens, mask), rtol=1e-6, atol=1e-6)
        p = params["params"]
        onset, interval = note_features(tokens, 40)
        emb = (p["embed"]["embedding"][tokens] + p["interval"]["embedding"][interval]
               + p["onset"]["embedding"][onset])
        by_hand = (emb * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        np.testing.assert_allclose(out[:, 16:], by_hand, rtol=1e-5, atol=1e-6)
        junk = jnp.where(mask > 0, tokens, 39)  # other tokens in the padding: the same features
        np.testing.assert_allclose(pooled.apply(params, junk, mask), out, rtol=1e-5, atol=1e-6)
