"""Near-duplicates: the edits an exact hash misses are caught, unrelated tunes are not, and no near-copy
sits in two splits or in one style twice after the corpus is built."""

import os

import numpy as np

import synth
from metamusic.data import SplitConfig, load_corpus, near_dups
from metamusic.data.melody import EncodingConfig

ENC = EncodingConfig()
CFG = near_dups.NearDupConfig()


def _tokens(pitches, steps=2):
    """BOS + each pitch as an onset token followed by `steps - 1` no-event tokens."""
    out = [ENC.bos]
    for p in pitches:
        out += [p - ENC.min_note + 2] + [0] * (steps - 1)
    return np.array(out)


def _tune(rng, n=64):
    """A random stepwise melody in G major between 55 and 79, like a folk tune's range."""
    scale = [55, 57, 59, 60, 62, 64, 66, 67, 69, 71, 72, 74, 76, 78, 79]
    i, out = 7, []
    for _ in range(n):
        i = int(np.clip(i + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), 0, len(scale) - 1))
        out.append(scale[i])
    return out


def _hash(pitches):
    from metamusic.data.melody import content_hash

    return content_hash(np.array(pitches))


def _variants(t):
    folded = t[:20] + [p - 12 if p > 72 else p for p in t[20:40]] + t[40:]  # octave folding of a high phrase
    edited = t[:30] + [t[30] + 2] + t[31:]  # one note changed
    pickup = [t[0] - 5] + t                 # a pickup note added
    a, b = t[:32], t[32:]
    written_out = a + a + b + b             # |: A :| |: B :| written out
    return {"octave folding": folded, "one note": edited, "pickup": pickup, "repeats written out": written_out}


def _similar(a, b, background):
    sets = [near_dups.interval_ngrams(_tokens(x), ENC.num_classes, CFG.n) for x in [a, b] + background]
    return {(i, j): s for i, j, s in near_dups.similar_pairs(sets, CFG)}.get((0, 1), 0.0)


def test_each_edit_the_exact_hash_misses_is_a_near_duplicate():
    rng = np.random.default_rng(0)
    background = [_tune(rng) for _ in range(30)]  # unrelated tunes, so n-gram rarity is as in a corpus
    for seed in range(5):
        t = _tune(np.random.default_rng(100 + seed))
        if any(p > 72 for p in t[20:40]):
            for name, v in _variants(t).items():
                assert _hash(v) != _hash(t), name  # the exact hash misses it
                assert _similar(t, v, background) >= CFG.threshold, name
        other = _tune(np.random.default_rng(200 + seed))
        assert _similar(t, other, background) < 0.2  # two unrelated tunes


def test_policy_keeps_one_copy_per_style_and_the_meta_test_copy_across_splits():
    class M:
        def __init__(self, style):
            self.style = style

    ms = [M("a"), M("a"), M("b"), M("c"), M("c")]
    pairs = [(0, 1, 0.9), (1, 2, 0.8), (2, 3, 0.7), (3, 4, 0.95)]
    keep, copies = near_dups.within_styles(ms, pairs)
    assert keep.tolist() == [True, False, True, True, False] and copies == {1: (0, 0.9), 4: (3, 0.95)}
    keep, across, cause = near_dups.across_splits(ms, pairs, keep, {"a": "train", "b": "val", "c": "test"})
    assert keep.tolist() == [True, False, False, True, False] and across == {"val~test": 1}
    assert cause == {2: (3, 0.7)}  # b's tune (val) goes, c's (test) stays


def _edit_abc(tune: str, x: int) -> str:
    """The same ABC tune under a new number and title, its 20th note letter raised by a step."""
    head, body = tune.split("K:G\n")
    letters = [i for i, ch in enumerate(body) if ch in "CDEFGABcdefgab"]
    k = letters[20]
    nxt = {"C": "D", "D": "E", "E": "F", "F": "G", "G": "A", "A": "B", "B": "c", "c": "d", "d": "e", "e": "f",
           "f": "g", "g": "a", "a": "b", "b": "a"}[body[k]]
    head = head.replace(head.split("\n")[0], f"X:{x}").replace(head.split("\n")[1], f"T:Variant {x}")
    return head + "K:G\n" + body[:k] + nxt + body[k + 1:]


def test_built_corpus_has_no_near_copy_in_two_splits_or_twice_in_a_style(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "c"
    tunes = {}
    for k, (style, meter) in enumerate((("s1", "6/8"), ("s2", "6/8"), ("s3", "6/8"), ("s4", "6/8"), ("s5", "6/8"))):
        os.makedirs(root / style)
        tunes[style] = [synth.abc_tune(100 * k + i + 1, rng, meter, bars=12, rests=False) for i in range(8)]
    for style, other in (("s1", "s2"), ("s2", "s3"), ("s3", "s4"), ("s4", "s5"), ("s5", "s1")):
        tunes[other].append(_edit_abc(tunes[style][0], 900 + len(tunes[other])))  # a near-copy in another style
    tunes["s1"].append(_edit_abc(tunes["s1"][1], 999))  # and one within a style
    for style, ts in tunes.items():
        synth.write_abc_book(str(root / style / "book.abc"), ts)
    split = SplitConfig(min_tunes=4, val_fraction=0.2, test_fraction=0.2, min_test_collections=1)
    c = load_corpus(str(root), cache_dir=str(tmp_path / "cache"), workers=1, progress=False, split=split)
    near = c.report["dedup"]["near"]
    assert near["within_style"] >= 1 and sum(near["across_splits"].values()) >= 1
    assert len(c.removed) == near["removed"]
    rank = {"train": 0, "val": 1, "test": 2}
    for r in c.removed:  # each removal names the kept tune it copies: same style, or a split nearer meta-test
        if r["style"] != r["partner_style"]:
            assert rank[c.split_of[r["style"]]] < rank[c.split_of[r["partner_style"]]], r
    assert any(r["style"] == r["partner_style"] for r in c.removed)
    assert any(r["style"] != r["partner_style"] for r in c.removed)
    sets = [near_dups.interval_ngrams(c.tune(i), c.enc.num_classes, CFG.n) for i in range(len(c))]
    for i, j, _ in near_dups.similar_pairs(sets, CFG):
        si, sj = c.styles[c.style_of[i]], c.styles[c.style_of[j]]
        assert si != sj and c.split_of[si] == c.split_of[sj], (si, sj)
    off = load_corpus(str(root), cache_dir=str(tmp_path / "cache"), workers=1, progress=False,
                      split=SplitConfig(min_tunes=4, val_fraction=0.2, test_fraction=0.2, min_test_collections=1,
                                        near_dup_threshold=0.0))
    assert len(off) == len(c) + near["removed"]


def test_a_melody_with_several_copies_is_caught_in_a_small_corpus():
    """Three versions of one melody (an original, a one-note edit, a copy with a pickup) among 27 unrelated
    tunes: their shared n-grams are in 3 of 30 tunes, which the rarity rule must still count as rare (a
    share of the corpus alone would call them common below a few hundred tunes), so every pair is found."""
    rng = np.random.default_rng(7)
    t = _tune(np.random.default_rng(300))
    v = _variants(t)
    tunes = [t, v["one note"], v["pickup"]] + [_tune(rng) for _ in range(27)]
    sets = [near_dups.interval_ngrams(_tokens(x), ENC.num_classes, CFG.n) for x in tunes]
    found = {(i, j) for i, j, _ in near_dups.similar_pairs(sets, CFG)}
    assert {(0, 1), (0, 2), (1, 2)} <= found
    assert not {p for p in found if max(p) >= 3}  # and none among the unrelated tunes
