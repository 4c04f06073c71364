"""The README's Python API tour runs as written (on the tiny config and the bundled corpus), in a fresh
folder holding a few tunes of the user's own."""

import os
import re

import note_seq

import synth

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _snippet() -> str:
    text = open(README).read()
    m = re.search(r"<!-- api-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md has no <!-- api-snippet --> python block"
    return m.group(1)


def test_readme_api_tour_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.makedirs("my_tunes")
    for seed in range(3):
        synth.write_midi(f"my_tunes/tune{seed}.mid", seed=seed)
    import metamusic.eval  # noqa: F401  (subpackages loaded first, as in any session: the API's names
    import metamusic.train  # noqa: F401   must not be shadowed by them)

    exec(compile(_snippet(), "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()
    headroom, paths = float(printed[-2]), eval(printed[-1])
    assert -10 < headroom < 10  # a share of the measured joint -> oracle headroom (finite)
    assert os.path.getsize("runs/demo/eval.md") > 100 and os.path.isdir("runs/demo/fomaml/checkpoints")
    assert paths and all(p.startswith("samples/my_style_fomaml_") for p in paths)
    for p in paths:
        assert note_seq.midi_file_to_note_sequence(p).notes
