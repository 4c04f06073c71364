"""Acceptance on the real bundled corpus (slow: a first ingest takes about 5 minutes on 2 cores).

    pytest -m slow tests/data/test_bundled_corpus.py
"""

import pytest

from metamusic.data import load_corpus
from metamusic.data.corpus import collection_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundled():
    return load_corpus(progress=False)


def test_catalog_size(bundled):
    rows = bundled.catalog()
    assert sum(r["tunes"] >= 40 for r in rows) >= 30
    assert len(bundled) >= 10_000


def test_abc_yield(bundled):
    src = bundled.report["sources"]
    found = sum(src[s]["tunes_found"] for s in ("essen", "oneills", "ryans", "aird"))
    melodies = sum(src[s]["melodies"] + src[s]["unlabeled"] for s in ("essen", "oneills", "ryans", "aird"))
    assert melodies / found >= 0.85


def test_meta_test_spans_three_collections(bundled):
    assert len({collection_of(s) for s in bundled.styles_in("test")}) >= 3
