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


# what `logreg_logits` minimises, recorded beside the L2s an evaluation chose (eval.json features_l2): an L2 chosen
# for another objective (an evaluation before it) is not reused
LOGREG_OBJECTIVE = "summed cross-entropy + l2/2 |w|^2, minimised"


def logreg_predict(xs: np.ndarray, ys: np.ndarray, xq: np.ndarray, n_way: int, *, l2: float = 30.0,
                   steps: int = 1000) -> np.ndarray:
    """Multinomial logistic regression per episode, vectorised over episodes.

    xs [B, n, D] support features with labels ys [B, n], xq [B, m, D] queries -> predicted labels
    [B, m] (the argmax of `logreg_logits`)."""
    return logreg_logits(xs, ys, xq, n_way, l2=l2, steps=steps).argmax(-1)


def logreg_logits(xs: np.ndarray, ys: np.ndarray, xq: np.ndarray, n_way: int, *, l2: float = 30.0,
                  steps: int = 1000, tol: float = 1e-8) -> np.ndarray:
    """The query logits [B, m, N] of `logreg_predict`'s regression: features standardised with the support
    set's mean and spread, then the minimum of the support tunes' summed cross-entropy plus l2/2 times the
    squared weights (the bias is not penalised; convex, so no seed). The penalty is a prior, so it is not
    divided among the tunes: an episode with more shots leans more on its data, and one L2 chosen on meta-val
    at data.shots serves every K.

    The fit runs in the support rows' own coordinates: with the standardised support xs = U S V^T (rank at
    most n = N*K, while D is in the hundreds), the weights that matter are w = V c, so the problem is the same
    regression on the n x r features U S. It is solved by Boehning's bound: the cross-entropy's Hessian is at
    most 1/2 (I - 11^T/N) (x) X^T X, so each step c <- c - A^-1 g with the fixed A = 1/2 X^T X + l2 lowers the
    objective (a majorize-minimize step: it cannot overshoot, whatever the features' scale), and A is
    factored once. Plain gradient descent with a fixed step diverged on wide, correlated features at larger
    L2s. Stops when no episode's step exceeds `tol`, or after `steps`. The smaller the L2, the slower the
    approach: at the evaluation's lowest L2, the widest rows (every encoder's features) at 10 shots stop at
    `steps` a little short of the minimum (docs/results_classification.md, the feature regression).

    Each support tune's cross-entropy is weighted by n / (classes * tunes of its class), so every class weighs
    the same however many example tunes it has (a user's style of 200 tunes beside one of 12 would otherwise
    pull every query its way). In an episode of K shots per class every weight is exactly 1."""
    mu = xs.mean(1, keepdims=True)
    sd = xs.std(1, keepdims=True) + 1e-3
    xs, xq = (xs - mu) / sd, (xq - mu) / sd
    u, s, vt = np.linalg.svd(xs, full_matrices=False)
    ones = lambda x: np.ones(x.shape[:2] + (1,))
    z = np.concatenate([u * s[:, None, :], ones(xs)], -1)  # [B, n, r + 1]: the support's coordinates, bias last
    zq = np.concatenate([xq @ np.swapaxes(vt, 1, 2), ones(xq)], -1)
    zt = np.swapaxes(z, 1, 2)
    pen = l2 * np.append(np.ones(z.shape[-1] - 1), 0.0)[:, None]  # no penalty on the bias
    y = np.eye(n_way)[ys]  # [B, n, N]
    counts = y.sum(1, keepdims=True)  # [B, 1, N]
    w = xs.shape[1] / ((counts > 0).sum(-1, keepdims=True) * (y * counts).sum(-1, keepdims=True))  # [B, n, 1]
    step = np.linalg.inv(0.5 * zt @ (w * z) + np.diag(pen[:, 0]))
    c = np.zeros((xs.shape[0], z.shape[-1], n_way))
    for _ in range(steps):
        logits = z @ c
        pr = np.exp(logits - logits.max(-1, keepdims=True))
        pr /= pr.sum(-1, keepdims=True)
        delta = step @ (zt @ (w * (pr - y)) + pen * c)
        c -= delta
        if np.abs(delta).max() < tol:
            break
    return zq @ c
