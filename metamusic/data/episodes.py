"""Episodic task samplers in plain numpy: fixed-shape arrays ready for `jax.vmap`.

Two task kinds, both one style per task/class:
  * generation tasks (`TaskSampler`): per task, K support and Q query tunes of one
    style, each one window of T tokens or the whole tune as W windows -> `Tasks` with
    [B, K*W, T] arrays;
  * classification episodes (`EpisodeSampler`): N styles, K shots and Q queries
    each, labels remapped to 0..N-1 -> `Episodes` with [B, N*K, T] arrays.

Every draw takes an explicit `np.random.Generator`. For exact resume the
training loop derives one per step (`step_rng(seed, step)`), so no sampler state
needs saving.
Containers are NamedTuples: typed, and JAX pytrees without importing JAX here.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from metamusic.data.melody import NO_POS
from metamusic.errors import MetamusicError, check_choice

POOLS = ("all", "support/query")


class Tasks(NamedTuple):
    """A meta-batch of generation tasks. Masks are 1.0 on real tokens, 0.0 on padding."""

    support: np.ndarray  # int32 [B, K, T]
    support_mask: np.ndarray  # float32 [B, K, T]
    query: np.ndarray  # int32 [B, Q, T]
    query_mask: np.ndarray  # float32 [B, Q, T]
    style: np.ndarray  # int32 [B], index into corpus.styles
    support_pos: np.ndarray  # int32 [B, K, T], bar position of each token (melody.NO_POS on BOS/padding)
    query_pos: np.ndarray  # int32 [B, Q, T]


class Episodes(NamedTuple):
    """A batch of N-way K-shot classification episodes, labels in 0..N-1."""

    support: np.ndarray  # int32 [B, N*K, T]
    support_mask: np.ndarray  # float32 [B, N*K, T]
    support_labels: np.ndarray  # int32 [B, N*K]
    query: np.ndarray  # int32 [B, N*Q, T]
    query_mask: np.ndarray  # float32 [B, N*Q, T]
    query_labels: np.ndarray  # int32 [B, N*Q]
    classes: np.ndarray  # int32 [B, N], the style index behind each label
    support_pos: np.ndarray  # int32 [B, N*K, T], bar positions (melody.NO_POS on BOS/padding)
    query_pos: np.ndarray  # int32 [B, N*Q, T]


class FeatureEpisodes(NamedTuple):
    """`Episodes` with every window's standardised hand-made features (`features.window_features`): the targets
    of the classification encoders' auxiliary feature loss (meta.feature_loss)."""

    support: np.ndarray
    support_mask: np.ndarray
    support_labels: np.ndarray
    query: np.ndarray
    query_mask: np.ndarray
    query_labels: np.ndarray
    classes: np.ndarray
    support_pos: np.ndarray
    query_pos: np.ndarray
    support_target: np.ndarray  # float32 [B, N*K, features.FEATURE_DIM]
    query_target: np.ndarray  # float32 [B, N*Q, features.FEATURE_DIM]


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The Generator for training step `step`: same seed and step, same episodes."""
    return np.random.default_rng([int(seed), int(step)])


class _WindowSource:
    """Random length-T windows of tunes, gathered with one vectorized index op."""

    def __init__(self, corpus, styles, length: int, pool: str, transpose: int):
        check_choice("pool", pool, POOLS)
        if length < 2:
            raise MetamusicError(f"data.length={length} must be >= 2 (an input and a target)")
        if not styles:
            if not len(corpus):  # every file unreadable: lowering min_tunes cannot help
                from metamusic.data.dataset import nothing_read

                raise MetamusicError(f"the corpus has {nothing_read(getattr(corpus, 'skips', []))}")
            raise MetamusicError("no styles to sample from; lower data.min_tunes or add styles")
        self.tokens = corpus.tokens
        self.positions = corpus.positions
        self.offsets = corpus.offsets[:-1]
        self.lengths = np.diff(corpus.offsets)
        self.length, self.transpose = length, int(transpose)
        self.enc = corpus.enc
        self.style_ids = np.array([corpus.style_index(s) for s in styles], np.int32)
        self.style_names = list(styles)
        # Per style: tune indices of the support pool and of the query pool (or all tunes twice).
        self.sup, self.qry = [], []
        for k in self.style_ids:
            idx = np.flatnonzero(corpus.style_of == k)
            if pool == "all":
                self.sup.append(idx)
                self.qry.append(idx)
            else:
                self.sup.append(idx[corpus.pool[idx] == 0])
                self.qry.append(idx[corpus.pool[idx] == 1])
        self.split_pools = pool != "all"
        self._arange = np.arange(length)

    def check(self, n_sup: int, n_qry: int, what: str) -> None:
        for name, s, q in zip(self.style_names, self.sup, self.qry):
            need_ok = (len(s) >= n_sup and len(q) >= n_qry) if self.split_pools else len(s) >= n_sup + n_qry
            if not need_ok:
                raise MetamusicError(
                    f"style {name!r} has {len(s)} support-pool and {len(q)} query-pool tunes, too few for "
                    f"{what}; lower data.shots/data.queries (or eval.shots) or raise data.min_tunes to drop small styles")

    def pick(self, rng, k: int, n_sup: int, n_qry: int):
        """Distinct tunes of style slot k: n_sup from the support pool, n_qry from the query pool."""
        if self.split_pools:
            s, q = self.sup[k], self.qry[k]
            return s[_choose(rng, len(s), n_sup)], q[_choose(rng, len(q), n_qry)]
        s = self.sup[k]
        both = s[_choose(rng, len(s), n_sup + n_qry)]
        return both[:n_sup], both[n_sup:]

    def windows(self, rng, tunes: np.ndarray, per_tune: int = 1):
        """tokens int32 [..., T], mask float32 [..., T] and bar positions int32 [..., T] for an int array
        of tune indices [..., n].

        per_tune=1: one random window of each tune. per_tune=W > 1: W consecutive windows of each
        tune (starts s, s+T-1, s+2(T-1), ...: every transition scored once), so a tune of up to
        W(T-1)+1 tokens is taken whole (s=0; windows past its end are all padding) and a longer one
        as a random span of that many tokens. The windows of tune j are rows j*W..j*W+W-1 of [..., n*W, T].
        """
        T, W = self.length, per_tune
        L = self.lengths[tunes]
        span = W * (T - 1) + 1  # T when W == 1
        start = (rng.random(tunes.shape) * np.maximum(L - span + 1, 1)).astype(np.int64)
        steps = (np.arange(W) * (T - 1))[:, None] + self._arange  # [W, T] offsets into the span
        pos = start[..., None, None] + steps
        valid = pos < L[..., None, None]
        idx = np.where(valid, self.offsets[tunes][..., None, None] + pos, 0)
        tok = np.where(valid, self.tokens[idx], self.enc.pad).astype(np.int32)
        bar = np.where(valid, self.positions[idx], NO_POS).astype(np.int32)
        if self.transpose:  # one shift per tune, the same in all its windows
            flat = tok.reshape(tok.shape[:-2] + (W * T,))
            tok = self._transpose(rng, flat).reshape(tok.shape)
        lead = tunes.shape[:-1] + (tunes.shape[-1] * W, T)
        return tok.reshape(lead), valid.astype(np.float32).reshape(lead), bar.reshape(lead)

    def _transpose(self, rng, tok):
        """Shifts each window's pitch tokens by a random -t..t semitones if all stay in range."""
        is_pitch = (tok >= 2) & (tok < self.enc.num_classes)
        shift = rng.integers(-self.transpose, self.transpose + 1, size=tok.shape[:-1])[..., None]
        lo = np.where(is_pitch, tok, self.enc.num_classes).min(-1, keepdims=True)
        hi = np.where(is_pitch, tok, 1).max(-1, keepdims=True)
        ok = (lo + shift >= 2) & (hi + shift < self.enc.num_classes)
        return np.where(is_pitch & ok, tok + shift, tok)


def _choose(rng, n: int, k: int) -> np.ndarray:
    """k distinct indices of range(n): partial Fisher-Yates via argpartition of random keys."""
    if k == 0:
        return np.zeros(0, np.int64)
    if k * 4 < n:  # sparse: rejection is cheaper than sorting n keys
        out = np.unique(rng.integers(0, n, size=2 * k))
        while len(out) < k:
            out = np.unique(np.concatenate([out, rng.integers(0, n, size=k)]))
        return rng.permutation(out)[:k]
    return np.argpartition(rng.random(n), k - 1)[:k] if k < n else rng.permutation(n)


class TaskSampler:
    """Generation tasks: one style per task, K support + Q query windows of distinct tunes.

    Args:
      corpus: a `Corpus`.
      styles: style names to draw from (e.g. corpus.styles_in("train")).
      shots, queries, length: K, Q and T.
      pool: "all" draws support and query tunes from the whole style (meta-training);
        "support/query" draws them from the style's disjoint support and query pools
        (evaluation: never score on a tune the model adapted on).
      transpose: random transposition augmentation, up to +-this many semitones per window.
      tune_windows: windows per tune. 1: one random window of T tokens per tune. W > 1: whole
        tunes, each as W consecutive windows (up to W(T-1)+1 tokens; a longer tune gives a random
        span that long): support and query become [B, K*W, T] and [B, Q*W, T], and a loss
        averaged over their real tokens is the NLL per event of whole tunes.
    """

    def __init__(self, corpus, styles, *, shots: int, queries: int, length: int, pool: str = "all",
                 transpose: int = 0, tune_windows: int = 1):
        if shots < 1 or queries < 1:
            raise MetamusicError(f"shots={shots} and queries={queries} must both be >= 1 (data.shots, data.queries, eval.shots)")
        if tune_windows < 1:
            raise MetamusicError(f"tune_windows={tune_windows} must be >= 1 (data.tune_windows, eval.tune_windows)")
        self.src = _WindowSource(corpus, list(styles), length, pool, transpose)
        self.shots, self.queries, self.tune_windows = shots, queries, tune_windows
        self.src.check(shots, queries, f"K={shots} shots + Q={queries} queries")

    def sample(self, rng: np.random.Generator, batch: int, style: Optional[int] = None) -> Tasks:
        """`batch` tasks; `style` (a slot in this sampler's style list) fixes the style."""
        slots = rng.integers(0, len(self.src.style_ids), size=batch) if style is None else np.full(batch, style)
        sup = np.empty((batch, self.shots), np.int64)
        qry = np.empty((batch, self.queries), np.int64)
        for b, k in enumerate(slots):
            sup[b], qry[b] = self.src.pick(rng, int(k), self.shots, self.queries)
        s_tok, s_mask, s_pos = self.src.windows(rng, sup, self.tune_windows)
        q_tok, q_mask, q_pos = self.src.windows(rng, qry, self.tune_windows)
        return Tasks(s_tok, s_mask, q_tok, q_mask, self.src.style_ids[slots], s_pos, q_pos)


def servable(corpus, styles, n_sup: int, n_qry: int) -> tuple[list, dict]:
    """The styles whose support pool holds n_sup tunes and query pool n_qry, and the others with what they
    hold ({style: "7 support-pool / 8 query-pool tunes"}): evaluation scores each K on the styles that can
    serve it and names the rest, instead of stopping after the work of the other K."""
    ok, left = [], {}
    for st in styles:
        k = corpus.style_index(st)
        idx = np.flatnonzero(corpus.style_of == k)
        s, q = int((corpus.pool[idx] == 0).sum()), int((corpus.pool[idx] == 1).sum())
        if s >= n_sup and q >= n_qry:
            ok.append(st)
        else:
            left[st] = f"{s} support-pool / {q} query-pool tunes"
    return ok, left


def styles_per_k(corpus, styles, shots: list, queries: int, min_styles: int = 1) -> tuple[dict, dict]:
    """For each K of `shots`: the styles that can serve K support + `queries` query tunes (an empty list
    where fewer than `min_styles` can, e.g. data.ways for classification), and the left-out styles per
    K ({"K=5": {style: what it holds}}, only for K that leave some out). Known before any evaluation work."""
    serve, left_out = {}, {}
    for k in shots:
        ok, left = servable(corpus, styles, k, queries)
        serve[k] = ok if len(ok) >= min_styles else []
        if left:
            left_out[f"K={k}"] = left
    return serve, left_out


class EpisodeSampler:
    """N-way K-shot classification episodes over styles, Q queries per class."""

    def __init__(self, corpus, styles, *, ways: int, shots: int, queries: int, length: int,
                 pool: str = "all", transpose: int = 0):
        styles = list(styles)
        if len(styles) < 2:  # (ways may already be clipped to the styles there are: name the styles, not it)
            raise MetamusicError(f"classification episodes need at least 2 styles, and these tunes have "
                                 f"{len(styles)} ({', '.join(styles) or 'none'}); use a corpus or eval.root with "
                                 "more style folders, or lower data.min_tunes / eval.min_tunes so more qualify")
        if ways < 2 or ways > len(styles):
            raise MetamusicError(f"data.ways={ways} must be between 2 and the number of styles ({len(styles)})")
        if shots < 1 or queries < 1:
            raise MetamusicError(f"shots={shots} and queries={queries} must both be >= 1 (data.shots, data.queries, eval.shots)")
        self.src = _WindowSource(corpus, styles, length, pool, transpose)
        self.ways, self.shots, self.queries = ways, shots, queries
        self.src.check(shots, queries, f"{shots}-shot episodes with {queries} queries per class")

    def sample(self, rng: np.random.Generator, batch: int) -> Episodes:
        N, K, Q = self.ways, self.shots, self.queries
        slots = np.stack([_choose(rng, len(self.src.style_ids), N) for _ in range(batch)])
        sup = np.empty((batch, N, K), np.int64)
        qry = np.empty((batch, N, Q), np.int64)
        for b in range(batch):
            for n in range(N):
                sup[b, n], qry[b, n] = self.src.pick(rng, int(slots[b, n]), K, Q)
        s_tok, s_mask, s_pos = self.src.windows(rng, sup.reshape(batch, N * K))
        q_tok, q_mask, q_pos = self.src.windows(rng, qry.reshape(batch, N * Q))
        labels = np.arange(N, dtype=np.int32)
        return Episodes(s_tok, s_mask, np.broadcast_to(np.repeat(labels, K), (batch, N * K)).copy(),
                        q_tok, q_mask, np.broadcast_to(np.repeat(labels, Q), (batch, N * Q)).copy(),
                        self.src.style_ids[slots], s_pos, q_pos)
