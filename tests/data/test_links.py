"""Symlinks in a user corpus: each real folder and file is read once, and every link not followed is said."""

import os

import numpy as np

import synth
from metamusic.data import SplitConfig, load_corpus
from metamusic.data.corpus import folder_sources
from metamusic.data.files import music_files


def _corpus(root, n=5):
    rng = np.random.default_rng(0)
    for k, (style, meter) in enumerate((("major", "6/8"), ("minor", "3/4"), ("other", "4/4"))):
        os.makedirs(os.path.join(root, style, "sub"))
        for i in range(n):
            synth.write_abc_book(os.path.join(root, style, "sub" if i % 2 else "", f"t{i}.abc"),
                                 [synth.abc_tune(100 * k + i + 1, rng, meter)])
    return root


def test_loops_and_links_to_other_styles_are_not_followed(tmp_path):
    root = _corpus(str(tmp_path / "c"))
    os.symlink("..", os.path.join(root, "minor", "loop"))  # the corpus root again, from inside a style
    os.symlink(".", os.path.join(root, "major", "self"))  # a self-loop
    os.symlink(os.path.join(root, "other", "sub"), os.path.join(root, "major", "theirs"))  # into another style
    os.symlink(os.path.join(root, "minor", "t0.abc"), os.path.join(root, "minor", "sub", "again.abc"))
    os.symlink(os.path.join(root, "other"), os.path.join(root, "alias"))  # a style folder that is another style
    os.makedirs(tmp_path / "outside")
    synth.write_abc_book(str(tmp_path / "outside" / "x.abc"), [synth.abc_tune(9, np.random.default_rng(1), "6/8")])
    os.symlink(str(tmp_path / "outside"), os.path.join(root, "major", "shared"))  # outside the root: followed
    os.symlink(str(tmp_path / "gone.abc"), os.path.join(root, "other", "gone.abc"))  # a link to nothing
    # a file of another style linked in: it stays in its own style, though "major" is walked before "other"
    os.symlink(os.path.join(root, "other", "t0.abc"), os.path.join(root, "major", "borrowed.abc"))

    src = {s.name: s for s in folder_sources(root)}
    assert {n: len(s.files) for n, s in src.items()} == {"user/alias": 0, "user/major": 6, "user/minor": 5,
                                                        "user/other": 5}
    for name, s in src.items():  # every file lies in its own style's real folder (or the outside link)
        style = name.split("/")[1]
        for f in s.files:
            real = os.path.realpath(f)
            assert real.startswith(os.path.realpath(os.path.join(root, style)) + os.sep) or "outside" in real
    notes = {n: " ".join(s.notes) for n, s in src.items()}
    assert "loop" in notes["user/minor"] and "corpus root" in notes["user/minor"]
    assert "again.abc" in notes["user/minor"] and "same file" in notes["user/minor"]
    assert "self" in notes["user/major"] and "already read" in notes["user/major"]
    assert "theirs" in notes["user/major"] and "another style" in notes["user/major"]
    assert "same folder as style 'other'" in notes["user/alias"]
    assert "gone.abc: a link to nothing" in notes["user/other"]
    assert "borrowed.abc" in notes["user/major"] and "a file of another style's folder" in notes["user/major"]
    assert os.path.join(root, "other", "t0.abc") in src["user/other"].files

    c = load_corpus(root, cache_dir=str(tmp_path / "cache"), workers=1, progress=False,
                    split=SplitConfig(min_tunes=2, val_fraction=0.25, test_fraction=0.25))
    assert c.styles == ["major", "minor", "other"]
    assert [r["tunes"] for r in c.catalog()] == [6, 5, 5]
    assert c.report["dedup"]["removed"] == 0
    assert any("loop" in line for line in c.report["links"]["user/minor"])


def test_user_paths_for_generate_and_classify_read_each_file_once(tmp_path):
    root = _corpus(str(tmp_path / "c"), n=3)
    os.symlink(".", os.path.join(root, "major", "self"))
    os.symlink("../..", os.path.join(root, "major", "sub", "up"))
    found = music_files([os.path.join(root, "major")])
    assert len(found) == 3 == len({os.path.realpath(f) for f in found})


def test_generate_from_a_corpus_root_says_it_pools_its_styles(tmp_path, caplog):
    """--style=DIR where DIR is a corpus root (one subfolder per style) reads every style's tunes as one support
    pool; a user who meant one style is told, with the subfolders named. One style's folder is read silently."""
    from metamusic.data import EncodingConfig
    from metamusic.generate import support_from_folder

    root = _corpus(str(tmp_path / "c"), n=3)
    rng = np.random.default_rng(0)
    tok, mask, _ = support_from_folder(root, EncodingConfig(), 6, 32, rng)
    assert tok.shape == (6, 32) and "holds 3 subfolders of music (major, minor, other); their tunes are pooled" in caplog.text
    caplog.clear()
    support_from_folder(os.path.join(root, "major"), EncodingConfig(), 2, 32, rng)
    assert "pooled" not in caplog.text


def test_tunes_seen_in_training_are_counted_as_exact_and_near_copies(tmp_path):
    """A user's folder that holds training tunes, some byte for byte and some with one note changed (as an export
    to another format or another edition gives): both are dropped, and the line a user reads counts both."""
    from metamusic.data import dropped_summary, without_tunes

    rng = np.random.default_rng(3)
    tunes = [synth.abc_tune(i + 1, rng, "6/8", bars=16) for i in range(12)]
    train = str(tmp_path / "train")
    for style, part in (("a", tunes[:4]), ("b", tunes[4:8]), ("c", tunes[8:])):
        os.makedirs(os.path.join(train, style))
        synth.write_abc_book(os.path.join(train, style, "book.abc"), part)
    split = SplitConfig(min_tunes=2, val_fraction=0.25, test_fraction=0.25, near_dup_threshold=0.4)
    seen = load_corpus(train, cache_dir=str(tmp_path / "cache"), workers=1, progress=False, split=split)
    assert len(seen.meta) == 12
    mine = str(tmp_path / "mine")
    os.makedirs(os.path.join(mine, "copies"))
    os.makedirs(os.path.join(mine, "new"))
    edited = [t.replace(" | ", " | G", 1) for t in tunes[:3]]  # one note more in the first bar line: a near copy
    assert all(e != t for e, t in zip(edited, tunes[:3]))
    synth.write_abc_book(os.path.join(mine, "copies", "book.abc"), tunes[3:5] + edited)
    synth.write_abc_book(os.path.join(mine, "new", "book.abc"),
                         [synth.abc_tune(100 + i, rng, "3/4", bars=16) for i in range(4)])
    theirs = load_corpus(mine, cache_dir=str(tmp_path / "cache"), workers=1, progress=False, split=split,
                         all_test=True)
    kept, dropped = without_tunes(theirs, (m["hash"] for m in seen.meta), 2, near_copies_of=seen,
                                  near_dup_threshold=0.4)
    assert (dropped["duplicates"], dropped["near_duplicates"]) == (2, 3)
    assert kept.styles == ["new"] and dropped["styles"] == {"copies": 0}
    assert dropped_summary(dropped) == ("dropped 5 tunes seen in training (2 exact copies, 3 near copies); styles under "
                                       "eval.min_tunes: copies (0 tunes)")


def test_catalog_counts_and_lists_the_links_it_did_not_read(tmp_path, capsys):
    from metamusic.data.__main__ import main

    root = _corpus(str(tmp_path / "c"))
    os.symlink(str(tmp_path / "gone.mid"), os.path.join(root, "other", "dead.mid"))  # a link to nothing
    os.symlink("..", os.path.join(root, "minor", "up"))  # the corpus root again
    args = ["catalog", "--root", root, "--min-tunes", "2", "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 links or folders not read; `--skipped` lists each" in out
    assert main(args + ["--skipped"]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert any(l.startswith("user/other\t") and "dead.mid: a link to nothing" in l for l in lines)
    assert any(l.startswith("user/minor\t") and "up -> " in l for l in lines)
    assert "0 skipped or removed, 2 links or folders not read" in cap.err
