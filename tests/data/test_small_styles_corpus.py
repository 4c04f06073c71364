"""examples/small_styles_corpus.py: the bundled styles too small for training, as a user folder."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples"))

import small_styles_corpus  # noqa: E402

from metamusic.data import EncodingConfig  # noqa: E402
from metamusic.data.files import read_tunes  # noqa: E402


def test_writes_the_small_styles_as_readable_abc_folders(tmp_path, capsys):
    assert small_styles_corpus.main(["--out", str(tmp_path)]) == 0
    styles = sorted(os.listdir(tmp_path))
    # every written style holds 10-39 tunes, labelled as the corpus labels them (none of the default run's
    # 44 styles, which all hold 40 or more)
    counts = dict(line.split(": ") for line in capsys.readouterr().out.splitlines() if ": " in line)
    assert set(counts) == set(styles) and len(styles) >= 5
    assert all(10 <= int(n.split()[0]) <= 39 for n in counts.values())
    assert "ryans_highland-fling" in styles and "essen_china-yunnan" in styles
    # the corpus's own reader takes every tune of a written tunebook
    tunes, _, _, skipped = read_tunes([str(tmp_path / "ryans_highland-fling")], EncodingConfig())
    assert len(tunes) == int(counts["ryans_highland-fling"].split()[0]) and not skipped
    assert all(len(t) > 20 for t in tunes)


def test_dance_holdout_keeps_ryans_collection_out_of_the_training_folder(tmp_path, capsys):
    """examples/dance_holdout_corpus.py: the four held-out dance types and no other Ryan's style under
    heldout/, no Ryan's style under train/, the score collections linked to the bundled files."""
    import dance_holdout_corpus

    assert dance_holdout_corpus.main(["--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()  # one line, of the folders it wrote (not its scratch one)
    assert len(printed) == 1 and printed[0].startswith(f"train: 39 styles in {tmp_path}"), printed
    train, heldout = sorted(os.listdir(tmp_path / "train")), sorted(os.listdir(tmp_path / "heldout"))
    assert heldout == sorted(dance_holdout_corpus.HELD_OUT)
    assert not [s for s in train if s.startswith("ryans")] and "oneills_reel" in train and "bach" in train
    links = os.listdir(tmp_path / "train" / "bach")
    assert links and all(os.path.islink(tmp_path / "train" / "bach" / f) for f in links)
    with pytest.raises(SystemExit):  # an existing folder is never overwritten
        dance_holdout_corpus.main(["--out", str(tmp_path)])
