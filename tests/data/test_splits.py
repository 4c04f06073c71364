"""Style-disjoint splits, de-duplication across splits, and support/query tune pools."""

import collections

import numpy as np
import pytest

from metamusic.data import splits
from metamusic.data.ingest import Melody
from metamusic.errors import MetamusicError


def _styles():
    out = [f"essen/china-p{i}" for i in range(12)] + [f"oneills/d{i}" for i in range(5)]
    return out + [f"ryans/d{i}" for i in range(5)] + ["bach/chorale", "aird/air", "palestrina/mass"]


def test_styles_are_disjoint_and_test_spans_three_collections():
    for seed in range(20):
        a = splits.assign_styles(_styles(), splits.SplitConfig(seed=seed))
        assert set(a) == set(_styles())
        test = [s for s, v in a.items() if v == "test"]
        assert len({s.split("/")[0] for s in test}) >= 3
        counts = collections.Counter(a.values())
        assert counts["test"] == 5 and counts["val"] == 4 and counts["train"] == 16


def test_split_is_seeded():
    cfg = splits.SplitConfig(seed=3)
    assert splits.assign_styles(_styles(), cfg) == splits.assign_styles(list(reversed(_styles())), cfg)
    assert splits.assign_styles(_styles(), cfg) != splits.assign_styles(_styles(), splits.SplitConfig(seed=4))


def test_dedup_keeps_first_copy_and_counts_across_styles():
    mk = lambda h, style: Melody(np.zeros(3, np.int8), h, {}, style.split("/")[0], style)
    ms = [mk("a", "x/1"), mk("b", "x/1"), mk("a", "y/2"), mk("b", "x/1"), mk("c", "y/2")]
    kept, stats = splits.deduplicate(ms)
    assert [m.hash for m in kept] == ["a", "b", "c"]
    assert stats["removed"] == 2 and stats["across_styles"] == 1 and stats["within_style"] == 1


def test_pools_are_disjoint_and_balanced():
    style_of = np.repeat(np.arange(4), [10, 11, 40, 3])
    pool = splits.tune_pools(style_of, splits.SplitConfig())
    for s in range(4):
        p = pool[style_of == s]
        assert 0 < p.sum() < len(p)
        assert abs(p.mean() - 0.5) <= 0.5 / len(p) + 1e-9 or len(p) == 3


def test_bad_split_config_names_the_field():
    with pytest.raises(MetamusicError, match="test_fraction"):
        splits.SplitConfig(test_fraction=1.5)
    with pytest.raises(MetamusicError, match="min_tunes"):
        splits.SplitConfig(min_tunes=1)


def test_corpus_has_no_style_or_hash_in_two_splits(style_corpus):
    c = style_corpus
    split_hashes = collections.defaultdict(set)
    for i, m in enumerate(c.meta):
        split_hashes[c.split_of[c.styles[c.style_of[i]]]].add(m["hash"])
    names = list(split_hashes)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            assert not split_hashes[names[i]] & split_hashes[names[j]]
    assert len({m["hash"] for m in c.meta}) == len(c)  # no duplicate anywhere
    assert sum(len(c.styles_in(s)) for s in splits.SPLITS) == len(c.styles)


def test_grouped_names_share_a_split_and_join_the_one_furthest_from_training():
    rank = {"train": 0, "val": 1, "test": 2}
    moved = 0
    for seed in range(20):
        plain = splits.assign_styles(_styles(), splits.SplitConfig(seed=seed))
        grouped = splits.assign_styles(_styles(), splits.SplitConfig(seed=seed, group_same_names=True))
        for i in range(5):  # oneills/d<i> and ryans/d<i>: one dance type in two collections
            a, b = f"oneills/d{i}", f"ryans/d{i}"
            assert grouped[a] == grouped[b] == max(plain[a], plain[b], key=rank.get)
            moved += plain[a] != plain[b]
        for s in _styles():
            if not s.startswith(("oneills/", "ryans/")):
                assert grouped[s] == plain[s]
    assert moved > 10  # the grouping did move styles in these draws
