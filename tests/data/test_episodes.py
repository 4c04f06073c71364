"""Episode samplers: shapes, masks, determinism, label remapping, pools, resume."""

import chex
import numpy as np
import pytest

from metamusic.data import EpisodeSampler, TaskSampler, step_rng
from metamusic.errors import MetamusicError

import synth


def _tune_of_window(c, window, mask):
    """Which tune a window came from (windows are contiguous slices of one tune)."""
    w = window[mask > 0]
    hits = [i for i in range(len(c)) if _contains(c.tune(i), w)]
    assert hits, "window not found in any tune"
    return hits


def _contains(seq, sub):
    n = len(sub)
    return any(np.array_equal(seq[j:j + n], sub) for j in range(len(seq) - n + 1))


def test_task_shapes_masks_and_padding(style_corpus):
    c = style_corpus
    s = TaskSampler(c, c.styles, shots=3, queries=2, length=200)
    t = s.sample(np.random.default_rng(0), batch=5)
    chex.assert_shape(t.support, (5, 3, 200))
    chex.assert_shape(t.query_mask, (5, 2, 200))
    assert t.support.dtype == np.int32 and t.support_mask.dtype == np.float32
    assert ((t.support == c.enc.pad) == (t.support_mask == 0)).all()  # T=200 > most tunes: padded
    assert (t.support_mask == 0).any()
    for b in range(5):
        for k in range(3):
            hits = _tune_of_window(c, t.support[b, k], t.support_mask[b, k])
            assert any(c.style_of[h] == t.style[b] for h in hits)


def test_same_rng_same_tasks_and_step_rng(style_corpus):
    s = TaskSampler(style_corpus, style_corpus.styles, shots=2, queries=2, length=16)
    a, b = s.sample(step_rng(7, 3), 4), s.sample(step_rng(7, 3), 4)
    c = s.sample(step_rng(7, 4), 4)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a.support, c.support)


def test_support_and_query_tunes_are_distinct(style_corpus):
    c = style_corpus
    s = TaskSampler(c, c.styles, shots=3, queries=3, length=400)  # whole tunes: identifiable
    t = s.sample(np.random.default_rng(1), 8)
    for b in range(8):
        ids = [tuple(_tune_of_window(c, t.support[b, k], t.support_mask[b, k])) for k in range(3)]
        ids += [tuple(_tune_of_window(c, t.query[b, q], t.query_mask[b, q])) for q in range(3)]
        assert len(set(ids)) == 6


def test_eval_pools_separate_support_from_query(style_corpus):
    c = style_corpus
    s = TaskSampler(c, c.styles, shots=2, queries=2, length=400, pool="support/query")
    t = s.sample(np.random.default_rng(2), 10)
    for b in range(10):
        for k in range(2):
            assert all(c.pool[h] == 0 for h in _tune_of_window(c, t.support[b, k], t.support_mask[b, k]))
            assert all(c.pool[h] == 1 for h in _tune_of_window(c, t.query[b, k], t.query_mask[b, k]))


def test_classification_labels_are_remapped(style_corpus):
    c = style_corpus
    s = EpisodeSampler(c, c.styles, ways=3, shots=2, queries=1, length=32)
    e = s.sample(np.random.default_rng(0), 6)
    chex.assert_shape(e.support, (6, 6, 32))
    chex.assert_shape(e.query_labels, (6, 3))
    assert (e.support_labels == np.array([0, 0, 1, 1, 2, 2])).all()
    assert (e.query_labels == np.array([0, 1, 2])).all()
    for b in range(6):
        assert len(set(e.classes[b])) == 3
        for j in range(6):
            hits = _tune_of_window(c, e.support[b, j], e.support_mask[b, j])
            assert any(c.style_of[h] == e.classes[b, e.support_labels[b, j]] for h in hits)
    # the label of a style varies between episodes
    assert len({tuple(x) for x in e.classes}) > 1


def test_transposition_augmentation_stays_in_range(style_corpus):
    c = style_corpus
    s = TaskSampler(c, c.styles, shots=2, queries=2, length=64, transpose=5)
    t = s.sample(np.random.default_rng(0), 16)
    plain = TaskSampler(c, c.styles, shots=2, queries=2, length=64).sample(np.random.default_rng(0), 16)
    assert (t.support >= 0).all() and (t.support <= c.enc.bos).all()
    assert not np.array_equal(t.support, plain.support)
    # the same windows, shifted: structure tokens (no-event, note-off, PAD, BOS) unchanged
    structural = plain.support < 2
    assert np.array_equal(t.support[structural], plain.support[structural])


def test_too_few_tunes_is_a_clear_error(style_corpus):
    with pytest.raises(MetamusicError, match="too few"):
        TaskSampler(style_corpus, style_corpus.styles, shots=10, queries=10, length=16)
    with pytest.raises(MetamusicError, match="ways"):
        EpisodeSampler(style_corpus, style_corpus.styles, ways=9, shots=1, queries=1, length=16)
    with pytest.raises(MetamusicError, match="pool"):
        TaskSampler(style_corpus, style_corpus.styles, shots=1, queries=1, length=16, pool="train")


def test_whole_tune_tasks_cover_each_tune_once_with_masks():
    corpus = synth.token_corpus(n_styles=4, n_tunes=12, length=40)  # tunes of 41-43 tokens
    K, Q, T, W = 3, 2, 16, 4  # W(T-1)+1 = 61 tokens: every tune fits whole
    s = TaskSampler(corpus, corpus.styles, shots=K, queries=Q, length=T, pool="support/query", tune_windows=W)
    t = s.sample(np.random.default_rng(0), 5)
    assert t.support.shape == (5, K * W, T) and t.query.shape == (5, Q * W, T) and t.query_pos.shape == t.query.shape
    for b in range(5):
        rows = t.support[b].reshape(K, W, T)
        masks = t.support_mask[b].reshape(K, W, T)
        # scored transitions (mask[1:]) of a tune's windows add up to its length - 1: whole, none twice
        scored = masks[:, :, 1:].sum((1, 2))
        starts = rows[:, 0, 0]
        assert (starts == corpus.enc.bos).all()  # each tune from its start
        tune_lengths = []
        for k in range(K):
            flat = np.concatenate([rows[k, 0]] + [rows[k, w, 1:] for w in range(1, W)])
            real = np.concatenate([masks[k, 0]] + [masks[k, w, 1:] for w in range(1, W)]) > 0
            tune = flat[real]
            match = [i for i in range(len(corpus)) if len(corpus.tune(i)) == len(tune)
                     and np.array_equal(corpus.tune(i), tune)]
            assert match, "the windows of a support tune join up to a whole corpus tune"
            tune_lengths.append(len(tune))
        assert list(scored) == [n - 1 for n in tune_lengths]
        assert (t.support[b][t.support_mask[b] == 0] == corpus.enc.pad).all()


def test_long_tunes_give_a_span_of_the_token_budget():
    corpus = synth.token_corpus(n_styles=3, n_tunes=10, length=120)
    s = TaskSampler(corpus, corpus.styles, shots=2, queries=2, length=16, tune_windows=3)
    t = s.sample(np.random.default_rng(1), 4)
    assert (t.support_mask.reshape(4, 2, 3, 16)[..., 1:].sum((2, 3)) == 3 * 15).all()  # 3 full windows
    # consecutive windows overlap by one token
    w = t.support.reshape(4, 2, 3, 16)
    assert (w[:, :, 1:, 0] == w[:, :, :-1, -1]).all()
