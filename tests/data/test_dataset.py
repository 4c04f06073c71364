"""The encoded corpus: yield report, cache reuse, rebuild on change, atomic writes."""

import os
import shutil
import time

import numpy as np
import pytest

import synth
from metamusic.data import SplitConfig, cache, ingest, load_corpus
from metamusic.data.melody import EncodingConfig
from metamusic.errors import MetamusicError

SPLIT = SplitConfig(min_tunes=4, val_fraction=0.25, test_fraction=0.25)


def _load(root, cache_dir, **kw):
    return load_corpus(root, cache_dir=cache_dir, workers=1, progress=False, split=SPLIT, **kw)


def test_style_corpus_contents(style_corpus):
    c = style_corpus
    assert c.styles == ["jigs", "odd", "reels", "waltz"]
    rep = c.report["sources"]
    assert rep["user/reels"]["melodies"] == 13 and rep["user/waltz"]["melodies"] == 13
    assert c.report["dedup"]["across_styles"] == 1  # the waltz copy of a reel
    assert len(c) == 12 * 4 + 1
    for i in range(len(c)):
        t = c.tune(i)
        assert t[0] == c.enc.bos and (t[1:] < c.enc.num_classes).all()
    rows = c.catalog()
    assert [r["tunes"] for r in rows] == [12, 12, 13, 12]
    assert rows[0]["meters"] == {"6/8": 12} and rows[1]["meters"] == {"7/8": 12}


def test_bad_files_are_counted_not_fatal(tmp_path):
    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    bad = synth.write_bad_files(str(tmp_path / "c" / "jigs" / "bad"))
    with open(tmp_path / "c" / "odd" / "book.abc", "a") as f:
        f.write("\n" + synth.BROKEN_VOICE_ABC)
    c = _load(root, str(tmp_path / "cache"))
    jigs = c.report["sources"]["user/jigs"]
    assert jigs["melodies"] == 5 and jigs["skipped"] == len(bad) and jigs["files_unreadable"] == len(bad)
    assert c.report["sources"]["user/odd"]["skipped"] == 1
    skips = cache.load(c.cache_path)[2]["skips"]  # the skip list saved with the cache
    assert {os.path.basename(s["path"]) for s in skips if s["source"] == "user/jigs"} == set(bad)
    assert all(s["reason"] for s in skips)


def test_cache_is_reused_and_rebuilt_on_change(tmp_path, monkeypatch):
    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    cdir = str(tmp_path / "cache")
    first = _load(root, cdir)
    calls = []
    real = ingest.ingest
    monkeypatch.setattr(ingest, "ingest", lambda *a, **k: calls.append(1) or real(*a, **k))
    t0 = time.perf_counter()
    again = _load(root, cdir)
    assert calls == [] and time.perf_counter() - t0 < 2.0
    assert np.array_equal(again.tokens, first.tokens) and again.split_of == first.split_of
    # touching a file (same content) costs a hash, not an ingest
    p = os.path.join(root, "jigs", "book.abc")
    os.utime(p, (time.time() + 5, time.time() + 5))
    _load(root, cdir)
    assert calls == []
    # editing a file rebuilds
    with open(p, "a") as f:
        f.write("\n" + synth.abc_tune(99, np.random.default_rng(9), "6/8"))
    changed = _load(root, cdir)
    assert calls == [1] and len(changed) == len(first) + 1
    # a new encoding setting is a different cache
    _load(root, cdir, enc=EncodingConfig(steps_per_quarter=2))
    assert calls == [1, 1]
    # a removed file rebuilds
    os.unlink(os.path.join(root, "reels", "extra.mid"))
    _load(root, cdir)
    assert calls == [1, 1, 1]


def test_interrupted_write_leaves_old_cache_intact(tmp_path, monkeypatch):
    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    cdir = str(tmp_path / "cache")
    first = _load(root, cdir)
    before = open(first.cache_path, "rb").read()

    def dying_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(cache.np, "savez", dying_savez)
    with pytest.raises(KeyboardInterrupt):
        _load(root, cdir, rebuild=True)
    assert open(first.cache_path, "rb").read() == before
    # no temp file left (beside the cache, the parse store: data/parse_store.py)
    assert sorted(f for f in os.listdir(cdir) if not f.startswith("parsed-")) == [os.path.basename(first.cache_path)]


def test_corrupt_cache_is_rebuilt(tmp_path):
    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    cdir = str(tmp_path / "cache")
    first = _load(root, cdir)
    with open(first.cache_path, "wb") as f:
        f.write(b"garbage")
    again = _load(root, cdir)
    assert np.array_equal(again.tokens, first.tokens)


def test_parallel_ingest_equals_serial(tmp_path):
    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    a = load_corpus(root, cache_dir=str(tmp_path / "a"), workers=1, progress=False, split=SPLIT)
    b = load_corpus(root, cache_dir=str(tmp_path / "b"), workers=2, progress=False, split=SPLIT)
    assert np.array_equal(a.tokens, b.tokens) and a.meta == b.meta


def test_user_errors(tmp_path):
    with pytest.raises(MetamusicError, match="not a folder"):
        load_corpus(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetamusicError, match="no style subfolders"):
        load_corpus(str(tmp_path / "empty"))
    (tmp_path / "empty" / "style").mkdir()
    with pytest.raises(MetamusicError, match="no music files"):
        load_corpus(str(tmp_path / "empty"))


def test_unknown_style_message(style_corpus):
    with pytest.raises(MetamusicError, match="unknown style 'nope'; run "):
        style_corpus.style_index("nope")
    name = style_corpus.styles[0]  # a misspelt name is answered with the nearest style
    with pytest.raises(MetamusicError, match=f"unknown style '{name}x'; run .*; did you mean {name}\\?$"):
        style_corpus.style_index(name + "x")


def test_cache_keys_on_the_real_path_and_says_when_it_is_damaged(tmp_path, monkeypatch, caplog):
    import logging

    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    os.symlink(root, str(tmp_path / "link"))
    os.makedirs(tmp_path / "x")
    cdir = str(tmp_path / "cache")
    first = _load(root, cdir)
    calls = []
    real = ingest.ingest
    monkeypatch.setattr(ingest, "ingest", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.chdir(tmp_path)
    for spelling in ("c", "./c/", str(tmp_path / "link"), os.path.join(str(tmp_path), "x", "..", "c")):
        assert _load(spelling, cdir).cache_path == first.cache_path
    assert calls == []  # one cache, read under every spelling
    with open(first.cache_path, "r+b") as f:  # a truncated cache file
        f.truncate(os.path.getsize(first.cache_path) // 2)
    with caplog.at_level(logging.WARNING, logger="metamusic.data"):
        again = _load("c", cdir)
    assert calls == [1] and np.array_equal(again.tokens, first.tokens)
    assert any("damaged" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)


def test_catalog_skipped_lists_every_skip_with_its_reason_from_the_cache(tmp_path, monkeypatch, capsys):
    from metamusic.data.__main__ import main

    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    bad = synth.write_bad_files(str(tmp_path / "c" / "jigs" / "bad"))
    with open(tmp_path / "c" / "odd" / "book.abc", "a") as f:
        f.write("\n" + synth.BAD_METER_ABC.replace("X:1", "X:77"))
    # a file copied into a subfolder: its tunes are exact duplicates, removed, and listed with the tune each repeats
    book = next(os.path.join(dp, n) for dp, _, names in os.walk(os.path.join(root, "jigs")) for n in names
                if n.endswith(".abc"))
    os.makedirs(tmp_path / "c" / "jigs" / "zz")
    shutil.copy(book, tmp_path / "c" / "jigs" / "zz" / "copy.abc")  # read after the original
    argv = ["catalog", "--root", root, "--cache-dir", str(tmp_path / "cache"), "--min-tunes", "4", "--skipped"]
    assert main(argv) == 0  # first call ingests
    first = capsys.readouterr().out.splitlines()
    calls = []
    real = ingest.ingest
    monkeypatch.setattr(ingest, "ingest", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert calls == [] and lines == first  # from the cache, the same list
    copies = [ln for ln in lines if "/zz/copy.abc" in ln]
    assert copies and all(f"exact duplicate (the same melody) of {book}" in ln for ln in copies)
    (across,) = [ln for ln in lines if "copy_of_reel.mid" in ln]  # the corpus's own copy, in another style
    assert across.startswith("user/waltz\t") and across.endswith("/reels/extra.mid in reels")
    assert len(lines) == len(bad) + 1 + len(copies) + 1
    for name in bad:
        (line,) = [ln for ln in lines if f"/{name}\t" in ln or f"/{name} (" in ln]
        assert line.startswith("user/jigs\t") and line.split("\t")[2]
    (meter,) = [ln for ln in lines if " X:77" in ln]
    assert meter.startswith("user/odd\t") and "4/3" in meter
    main(argv[:-1])  # the table groups by reason; a MusicXML file both readers refuse shows music21's
    assert "note_seq, then music21 could not parse x2" in capsys.readouterr().out


def test_unwritable_cache_degrades_to_not_cached_with_one_warning(tmp_path, caplog):
    """A cache folder that cannot be written (here a file where the folder should be) costs the next run an
    ingest, never this one's corpus: one warning, the same tunes as with a working cache."""
    import logging

    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=6)
    blocked = tmp_path / "cache_is_a_file"
    blocked.write_text("x")
    with caplog.at_level(logging.WARNING, logger="metamusic.data"):
        c = load_corpus(root, cache_dir=str(blocked), workers=1, progress=False, split=SplitConfig(min_tunes=4))
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "could not write the cache" in warnings[0].getMessage()
    assert "(it is a file, not a folder)" in warnings[0].getMessage()  # (the OS said only "File exists")
    ok = load_corpus(root, cache_dir=str(tmp_path / "cache"), workers=1, progress=False,
                     split=SplitConfig(min_tunes=4))
    assert np.array_equal(c.tokens, ok.tokens) and c.styles == ok.styles
    assert c.cache_path == "" and ok.cache_path.startswith(str(tmp_path / "cache"))  # no cache file is named


def test_hidden_style_folders_are_counted_and_warned_not_silently_ignored(tmp_path, caplog):
    import logging

    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=6)
    shutil.copytree(os.path.join(root, "jigs"), os.path.join(root, ".drafts"))
    synth.write_midi(os.path.join(root, "stray.mid"))  # a music file with no style folder: left out, and said
    with caplog.at_level(logging.WARNING, logger="metamusic.data"):
        c = load_corpus(root, cache_dir=str(tmp_path / "cache"), workers=1, progress=False,
                        split=SplitConfig(min_tunes=4))
    assert not any(".drafts" in s for s in c.styles)
    said = [r.getMessage() for r in caplog.records if ".drafts" in r.getMessage()]
    assert len(said) == 1 and "hidden" in said[0]
    assert any("left out 1 music file(s) directly under" in r.getMessage() and "stray.mid" in r.getMessage()
               for r in caplog.records)
    assert "user/.drafts" in c.report["links"]  # in the corpus report beside links not followed


def test_catalog_tables_stay_aligned_with_long_style_names(tmp_path, capsys):
    from metamusic.data.__main__ import main

    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    long_name = "Böhmische Polkas aus dem Egerland, Sammlung 1" + "x" * 10
    os.rename(os.path.join(root, "jigs"), os.path.join(root, long_name))
    assert main(["catalog", "--root", root, "--cache-dir", str(tmp_path / "cache"), "--min-tunes", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("style "))
    table = lines[head: head + 1 + len(os.listdir(root))]
    assert any(ln.startswith(long_name + " ") for ln in table)
    assert len({ln.index(" train ") if " train " in ln else ln.index(" split ") for ln in table
                if " train " in ln or " split " in ln}) == 1  # the split column starts at one place in every row
    src = next(i for i, ln in enumerate(lines) if ln.startswith("source "))
    rows = [ln for ln in lines[src:] if ln.startswith(("source ", "user/"))]
    assert len(rows) == 1 + len(os.listdir(root))
    assert len({ln.index("%") if "%" in ln else ln.index("yield") + len("yield") - 1 for ln in rows}) == 1


def test_a_midi_file_stored_as_a_tune_is_read_again_under_a_lower_size_limit(tmp_path, monkeypatch):
    """The parse store keys a MIDI file with the size limit, so a file it holds as a tune from before the limit
    (or from a higher one) is not taken from it past the limit: it is read again, and skipped."""
    from metamusic.data import formats

    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    big = os.path.join(root, "reels", "extra.mid")
    kw = dict(cache_dir=str(tmp_path / "cache"), workers=1, progress=False, split=SPLIT)
    before = load_corpus(root, **kw)
    assert any(m["path"] == big for m in before.meta)
    monkeypatch.setattr(formats, "MAX_MIDI_BYTES", os.path.getsize(big) - 1)
    synth.write_midi(os.path.join(root, "jigs", "new.mid"), seed=99)  # the folder changed: re-ingest, stores read
    after = load_corpus(root, **kw)
    assert after.report["files_from_parse_store"] > 0  # the unchanged files came from the store
    assert not any(m["path"] == big for m in after.meta)
    (skip,) = [s for s in after.skips if s["path"] == big]
    assert "MAX_MIDI_BYTES" in skip["reason"]


def test_a_folder_with_no_readable_tune_says_so_not_to_lower_min_tunes(tmp_path):
    from metamusic.data.episodes import TaskSampler

    for style in ("a", "b"):
        os.makedirs(tmp_path / "c" / style)
        for i in range(3):
            (tmp_path / "c" / style / f"{i}.mid").write_bytes(b"\0" * 64)
    kw = dict(cache_dir=str(tmp_path / "cache"), workers=1, progress=False, split=SplitConfig(min_tunes=2))
    with pytest.raises(MetamusicError, match=r"no usable tunes: 6 files or tunes skipped \(unreadable MIDI x6\).*--skipped"):
        load_corpus(str(tmp_path / "c"), all_test=True, **kw)
    c = load_corpus(str(tmp_path / "c"), **kw)  # a corpus to train on: the sampler says it
    assert len(c) == 0 and len(c.skips) == 6
    with pytest.raises(MetamusicError, match="no usable tunes: 6 files"):
        TaskSampler(c, c.styles_in("train"), shots=1, queries=1, length=8)


def test_catalog_of_a_folder_too_small_to_split_lists_its_styles_as_an_evaluation_folder(tmp_path, capsys):
    """A user's first look at a small folder (fewer than 3 styles with --min-tunes tunes): the catalog still
    lists every style, as eval.root would read it, and says why no split and which flag to change, instead of
    stopping at the split with a config field's name."""
    from metamusic.data.__main__ import main

    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=5)
    shutil.rmtree(tmp_path / "c" / "odd")
    os.makedirs(tmp_path / "c" / "one")
    synth.write_midi(str(tmp_path / "c" / "one" / "only.mid"), seed=3)
    assert main(["catalog", "--root", root, "--cache-dir", str(tmp_path / "cache"), "--min-tunes", "6"]) == 0
    out, err = capsys.readouterr()
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[1:4]}
    # (waltz's copy of a reel is a near-duplicate across styles, removed)
    assert rows == {"jigs": ["test", "5"], "reels": ["test", "6"], "waltz": ["test", "5"]}, out
    assert "one=1" in out  # a style of one tune is named among those left out
    assert "note: 1 style(s) have --min-tunes=6 tunes or more, fewer than the 3" in err and "--min-tunes" in err
    # with enough styles the catalog splits as before, without the note
    assert main(["catalog", "--root", root, "--cache-dir", str(tmp_path / "cache"), "--min-tunes", "2"]) == 0
    out, err = capsys.readouterr()
    assert "note:" not in err and "meta-train (1)" in out, out
