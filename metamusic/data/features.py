"""Hand-made melody features from tokens (numpy): pitch-class and interval histograms, scale degrees,
contour and register, and with the bar-position channel meter and rhythm histograms and beat patterns.

Used by the non-learned style classifiers (nearest class by histograms; logistic regression on
`tune_features`, fitted per episode by `logreg_predict`) and by the music metrics. Token layout:
see metamusic.data.melody.
"""

from __future__ import annotations

import numpy as np


def notes(tokens: np.ndarray, num_classes: int, min_note: int) -> np.ndarray:
    """MIDI pitches of the note onsets in one token sequence."""
    t = np.asarray(tokens)
    return t[(t >= 2) & (t < num_classes)].astype(np.int64) - 2 + min_note


def histograms(tokens: np.ndarray, num_classes: int, min_note: int, max_interval: int = 12) -> np.ndarray:
    """[12 pitch-class shares | 2*max_interval+1 interval shares] of one sequence (zeros if empty)."""
    p = notes(tokens, num_classes, min_note)
    pc = np.bincount(p % 12, minlength=12).astype(np.float64)
    iv = np.clip(np.diff(p), -max_interval, max_interval) + max_interval
    ih = np.bincount(iv, minlength=2 * max_interval + 1).astype(np.float64)
    return np.concatenate([pc / max(pc.sum(), 1), ih / max(ih.sum(), 1)])


def nearest_class(support: np.ndarray, support_labels: np.ndarray, query: np.ndarray, n_way: int,
                  num_classes: int, min_note: int) -> np.ndarray:
    """Predicted labels of `query` windows: the class whose mean histogram is nearest (L1)."""
    hs = np.stack([histograms(x, num_classes, min_note) for x in support])
    hq = np.stack([histograms(x, num_classes, min_note) for x in query])
    protos = np.stack([hs[support_labels == c].mean(0) for c in range(n_way)])
    return np.abs(hq[:, None] - protos[None]).sum(-1).argmin(-1)


# -- the musically informed baseline: meter, pitch-class, interval and rhythm histograms --

IOI_BINS = 16  # inter-onset intervals of 1..16 steps (longer ones share the last bin)
POS_BINS = 64  # bar positions 0..63 (melody.MAX_POS)
BEAT_STEPS = 4  # a beat pattern spans one quarter at the default 4 steps per quarter
# log2 of consecutive inter-onset ratios each ratio is binned to (nearest): 1/4, 1/3, 1/2, 2/3, 1, 3/2, 2, 3, 4
IOI_RATIOS = np.log2([1 / 4, 1 / 3, 1 / 2, 2 / 3, 1, 3 / 2, 2, 3, 4])
RHYTHM_DIM = 2 ** BEAT_STEPS + len(IOI_RATIOS)
# the blocks of `tune_features`, in order, with their widths: what an ablation slices by name
BLOCKS = (("pitch classes", 12), ("intervals", 25), ("inter-onset", IOI_BINS), ("onset positions", POS_BINS),
          ("bar lengths", POS_BINS), ("tonal", 24), ("rhythm", RHYTHM_DIM))


def block_columns(name: str) -> np.ndarray:
    """The columns of `tune_features` that hold the block `name` (one of BLOCKS)."""
    names = [b for b, _ in BLOCKS]
    if name not in names:
        raise ValueError(f"unknown feature block {name!r}; one of {names}")
    start = sum(w for _, w in BLOCKS[: names.index(name)])
    return np.arange(start, start + dict(BLOCKS)[name])


def tonal_features(tokens: np.ndarray, num_classes: int, min_note: int) -> np.ndarray:
    """[12 scale degrees from the final note | 9 contour pairs | 3 register numbers] of one tune.

    Pitch classes are absolute and intervals ignore the key; these read the tune in its own key and
    range. Scale degrees are onsets counted by semitones above the last note, a folk tune's usual
    tonic (a pentatonic Chinese tune and a major-mode German one differ here whatever their key);
    contour pairs are the shares of (down, same, up) x (down, same, up) for consecutive intervals;
    register is the mean pitch (centred on F#4, in octaves), its spread and its range (in two
    octaves). They are in the feature set because adding them raised the meta-val accuracy of the
    feature regressions, alone and beside a trained encoder (docs/design_notes.md#tonal-features)."""
    p = notes(tokens, num_classes, min_note)
    if len(p) == 0:
        return np.zeros(12 + 9 + 3)
    degrees = np.bincount((p - p[-1]) % 12, minlength=12) / len(p)
    s = np.sign(np.diff(p)) + 1
    contour = (np.bincount(s[:-1] * 3 + s[1:], minlength=9) / (len(s) - 1)) if len(s) > 1 else np.zeros(9)
    register = np.array([(p.mean() - 66) / 12, p.std() / 12, (p.max() - p.min()) / 24])
    return np.concatenate([degrees, contour, register])


def rhythm_features(tokens: np.ndarray, positions: np.ndarray, num_classes: int) -> np.ndarray:
    """[16 beat onset patterns | 9 consecutive inter-onset ratios] of one tune (shares; zeros if none).

    The inter-onset and onset-position histograms count single notes; two dance types of one meter (a
    hornpipe's dotted or tripleted beats, a reel's even quavers) differ in how the notes of one beat go
    together. A beat pattern is the onsets of the `BEAT_STEPS` steps from a bar position that is a
    multiple of `BEAT_STEPS` (bit 3 the beat itself: 1010 two quavers, 1001 dotted quaver and
    semiquaver, 1101 a quantized triplet, 1000 a crotchet); it needs the bar-position channel. The ratio
    of each inter-onset interval to the one before (binned to the nearest of `IOI_RATIOS`) does not need
    it and reads the same whether a tune is written in quavers or in semiquavers: alternating 3 and 1/3
    is a dotted rhythm, 1 is even notes."""
    t, p = np.asarray(tokens), np.asarray(positions).astype(np.int64)
    onset = ((t >= 2) & (t < num_classes)).astype(np.int64)
    n, k = len(t), BEAT_STEPS
    beats = np.zeros(2 ** k)
    if n >= k:
        starts = np.flatnonzero((p[: n - k + 1] < POS_BINS) & (p[: n - k + 1] % k == 0))
        steps = starts[:, None] + np.arange(k)  # [beats, k]
        whole = (p[steps] == p[starts, None] + np.arange(k)).all(1)  # no bar line (or NO_POS) inside
        codes = (onset[steps[whole]] << np.arange(k - 1, -1, -1)).sum(1)
        beats = np.bincount(codes, minlength=2 ** k).astype(np.float64)
    ioi = np.diff(np.flatnonzero(onset))
    ratios = np.zeros(len(IOI_RATIOS))
    if len(ioi) > 1:
        r = np.log2(ioi[1:] / ioi[:-1])
        ratios = np.bincount(np.abs(r[:, None] - IOI_RATIOS[None]).argmin(1), minlength=len(IOI_RATIOS)).astype(np.float64)
    return np.concatenate([beats / max(beats.sum(), 1), ratios / max(ratios.sum(), 1)])


FEATURE_DIM = sum(w for _, w in BLOCKS)  # the width of `tune_features`


def window_features(tokens: np.ndarray, positions: np.ndarray, num_classes: int, min_note: int) -> np.ndarray:
    """`tune_features` of every window of a batch: tokens and positions [..., T] -> [..., FEATURE_DIM]."""
    t, p = np.asarray(tokens), np.asarray(positions)
    flat = [tune_features(a, b, num_classes, min_note) for a, b in zip(t.reshape(-1, t.shape[-1]),
                                                                        p.reshape(-1, p.shape[-1]))]
    return np.stack(flat).reshape(t.shape[:-1] + (FEATURE_DIM,)) if flat else np.zeros(t.shape[:-1] + (FEATURE_DIM,))


def tune_features(tokens: np.ndarray, positions: np.ndarray, num_classes: int, min_note: int) -> np.ndarray:
    """One tune's hand-made features:
    [12 pitch classes | 25 intervals | 16 inter-onset intervals | 64 onset positions in the bar |
    64 bar lengths in steps | 24 tonal features (`tonal_features`) | 25 rhythm features
    (`rhythm_features`)]. The histograms are shares (each block summing to 1 or all zero). The bar
    blocks and beat patterns need the bar-position channel (all zero without it): they tell 6/8 from
    9/8 and a reel's onsets from a hornpipe's."""
    t, p = np.asarray(tokens), np.asarray(positions)
    onset = (t >= 2) & (t < num_classes)
    hist = histograms(t, num_classes, min_note)
    steps = np.flatnonzero(onset)
    ioi = np.bincount(np.clip(np.diff(steps), 1, IOI_BINS) - 1, minlength=IOI_BINS).astype(np.float64)
    valid = p < POS_BINS
    at = p[onset & valid]
    pos = np.bincount(at, minlength=POS_BINS).astype(np.float64)[:POS_BINS]
    # a bar ends where the next step is a downbeat: its length is the last position + 1
    ends = np.flatnonzero(valid[:-1] & valid[1:] & (p[1:] == 0))
    bars = np.bincount(np.clip(p[ends] + 1, 1, POS_BINS) - 1, minlength=POS_BINS).astype(np.float64)[:POS_BINS]
    norm = lambda h: h / max(h.sum(), 1)
    return np.concatenate([hist, norm(ioi), norm(pos), norm(bars), tonal_features(t, num_classes, min_note),
                           rhythm_features(t, p, num_classes)])


def logreg_predict(xs: np.ndarray, ys: np.ndarray, xq: np.ndarray, n_way: int, *, l2: float = 1e-2,
                   steps: int = 300, lr: float = 0.5) -> np.ndarray:
    """Multinomial logistic regression per episode, vectorised over episodes.

    xs [B, n, D] support features with labels ys [B, n], xq [B, m, D] queries -> predicted labels
    [B, m] (the argmax of `logreg_logits`)."""
    return logreg_logits(xs, ys, xq, n_way, l2=l2, steps=steps, lr=lr).argmax(-1)


def logreg_logits(xs: np.ndarray, ys: np.ndarray, xq: np.ndarray, n_way: int, *, l2: float = 1e-2,
                  steps: int = 300, lr: float = 0.5) -> np.ndarray:
    """The query logits [B, m, N] of `logreg_predict`'s regression. Features are standardised with the
    support set's mean and spread, then the L2-penalised fit runs `steps` of full-batch gradient descent
    from zero (convex: no seed).

    The descent runs in its dual form: from zero, every step's weights are a combination of the support
    rows, w = xs^T a (the gradient xs^T g and the penalty l2 w both are), so the logits xs w are K a with
    K = xs xs^T [n, n], and each step costs n*n*N instead of n*D*N. The features are wider than the
    support set is long (D in the hundreds, n = N*K), so this is the same descent, step for step, at a
    fraction of the cost; only float summation order differs.
    """
    mu = xs.mean(1, keepdims=True)
    sd = xs.std(1, keepdims=True) + 1e-3
    xs, xq = (xs - mu) / sd, (xq - mu) / sd
    xt = np.swapaxes(xs, 1, 2)
    k, kq = xs @ xt, xq @ xt  # [B, n, n], [B, m, n]
    y = np.eye(n_way)[ys]  # [B, n, N]
    a = np.zeros((xs.shape[0], xs.shape[1], n_way))
    b = np.zeros((xs.shape[0], 1, n_way))
    n = xs.shape[1]
    for _ in range(steps):
        z = k @ a + b
        z -= z.max(-1, keepdims=True)
        pr = np.exp(z)
        pr /= pr.sum(-1, keepdims=True)
        g = (pr - y) / n
        a = a * (1 - lr * l2) - lr * g  # w - lr (xs^T g + l2 w), with w = xs^T a
        b -= lr * g.sum(1, keepdims=True)
    return kq @ a + b
