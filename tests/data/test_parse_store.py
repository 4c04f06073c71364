"""The parse store: a file whose content was parsed before is not parsed again (new split settings, one
added file, a moved folder), an edited file is, and what comes back equals a fresh parse."""

import os
import shutil

import numpy as np
import pytest

import synth
from metamusic.data import SplitConfig, ingest, load_corpus, parse_store
from metamusic.data.melody import EncodingConfig

SPLIT = SplitConfig(min_tunes=3, val_fraction=0.25, test_fraction=0.25)


@pytest.fixture
def parses(monkeypatch):
    """The files parsed (in this process: workers=1)."""
    seen = []
    real = ingest._work
    monkeypatch.setattr(ingest, "_work", lambda item: seen.append(os.path.basename(item[0])) or real(item))
    return seen


def _load(root, cdir, **kw):
    return load_corpus(root, cache_dir=cdir, workers=1, progress=False, **{"split": SPLIT, **kw})


def _same(a, b):
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.positions, b.positions)
    assert a.meta == b.meta and a.split_of == b.split_of and a.skips == b.skips


def test_only_new_or_changed_files_are_parsed(tmp_path, parses):
    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    synth.write_bad_files(str(tmp_path / "c" / "jigs" / "bad"))
    cdir = str(tmp_path / "cache")
    first = _load(root, cdir)
    n_files = len(parses)
    assert n_files == 14 and first.report["files_parsed"] == n_files
    assert any(f.startswith("parsed-") for f in os.listdir(cdir))
    # other split settings: a new corpus cache, no parse, and the corpus a full re-parse gives
    parses.clear()
    other = SplitConfig(min_tunes=3, val_fraction=0.25, test_fraction=0.25, seed=7)
    reused = _load(root, cdir, split=other)
    assert parses == [] and reused.report["files_from_parse_store"] == n_files
    _same(reused, _load(root, cdir, split=other, rebuild=True))
    assert len(parses) == n_files  # rebuild parses everything again
    # one added file: only it is parsed
    parses.clear()
    synth.write_midi(os.path.join(root, "reels", "new.mid"), seed=31)
    grown = _load(root, cdir)
    assert parses == ["new.mid"] and len(grown) == len(first) + 1
    # a byte-identical copy under another name is parsed (a title can come from the file name)
    parses.clear()
    shutil.copy(os.path.join(root, "reels", "new.mid"), os.path.join(root, "waltz", "other_name.mid"))
    _load(root, cdir)
    assert parses == ["other_name.mid"]
    # an edited file is parsed again, by content, whatever its time stamp
    parses.clear()
    with open(os.path.join(root, "jigs", "book.abc"), "a") as f:
        f.write("\n" + synth.abc_tune(99, np.random.default_rng(9), "6/8"))
    edited = _load(root, cdir)
    assert parses == ["book.abc"] and len(edited) == len(grown) + 1  # (the copy is an exact duplicate)


def test_a_moved_folder_is_not_parsed_again_and_its_records_name_the_new_paths(tmp_path, parses):
    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    synth.write_bad_files(str(tmp_path / "c" / "jigs" / "bad"))
    cdir = str(tmp_path / "cache")
    first = _load(root, cdir)
    moved = shutil.copytree(root, str(tmp_path / "elsewhere"))
    parses.clear()
    again = _load(moved, cdir)
    assert parses == []
    fresh = _load(moved, str(tmp_path / "cache2"))  # parsed from scratch
    _same(again, fresh)
    assert all(s["path"].startswith(moved) for s in again.skips) and len(again.skips) == len(first.skips) > 0
    assert {m.get("path") for m in again.meta} == {m.get("path") for m in fresh.meta}


def test_a_damaged_store_is_rebuilt_and_another_encoding_uses_its_own(tmp_path, parses, caplog):
    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    cdir = str(tmp_path / "cache")
    first = _load(root, cdir)
    n_files = len(parses)
    store = [f for f in os.listdir(cdir) if f.startswith("parsed-")]
    assert len(store) == 1
    with open(os.path.join(cdir, store[0]), "wb") as f:
        f.write(b"garbage")
    parses.clear()
    again = _load(root, cdir, split=SplitConfig(min_tunes=3, val_fraction=0.25, test_fraction=0.25, seed=3))
    assert len(parses) == n_files and "parse store" in caplog.text
    parses.clear()
    _load(root, cdir, enc=EncodingConfig(steps_per_quarter=2))
    assert len(parses) == n_files  # the store key includes the encoding
    assert len([f for f in os.listdir(cdir) if f.startswith("parsed-")]) == 2
    assert len(again) == len(first)


def test_the_shipped_store_covers_the_bundled_corpus():
    """The package's parse of music21's bundled corpus answers for every bundled file, where its key matches."""
    from metamusic.data import corpus as corpus_lib
    from metamusic.data.cache import sha1_file

    shipped = parse_store.ParseStore.load(parse_store.shipped_store_path())
    assert shipped is not None, "metamusic/data/shipped/ has no parse store: python -m metamusic.data ship-store"
    here = parse_store.store_settings(EncodingConfig(), "music21")
    if shipped.settings != here:
        pytest.skip(f"shipped store made with {shipped.settings}, this machine {here}: it is not used here")
    files = [f for s in corpus_lib.bundled_sources() for f in s.files]
    missing = [f for f in files if f"{sha1_file(f)}:{os.path.basename(f)}" not in shipped.files]
    assert not missing, f"{len(missing)} bundled files not in the shipped store, e.g. {missing[:3]}"
