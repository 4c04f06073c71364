"""Paths as users give them: `~` left unexpanded by the shell, and the report files of an evaluation on a user
folder (eval.root), named after the folder, where two folders of one name must not overwrite each other's reports."""

import json
import os

from metamusic import cli


def _report(workdir, name, config):
    with open(os.path.join(workdir, name + ".json"), "w") as f:
        json.dump({"config": config}, f)


def test_a_second_folder_of_the_same_name_gets_its_own_report_name(tmp_path):
    a, b = tmp_path / "data_a" / "jigs", tmp_path / "data_b" / "jigs"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    work = str(tmp_path / "run")
    os.makedirs(work)
    assert cli._eval_name(work, str(a)) == "eval_jigs"  # nothing there yet
    _report(work, "eval_jigs", {"test_root": str(a)})  # the melody family's record of its folder
    assert cli._eval_name(work, str(a) + "/") == "eval_jigs"  # the same folder, spelled otherwise: overwritten
    other = cli._eval_name(work, str(b))
    assert other.startswith("eval_jigs_") and len(other) == len("eval_jigs_") + 6
    assert cli._eval_name(work, str(b)) == other  # stable, so re-evaluating that folder replaces its own report
    _report(work, "eval_jigs", {"corpus": str(b)})  # the classification family's record
    assert cli._eval_name(work, str(b)) == "eval_jigs" and cli._eval_name(work, str(a)) != "eval_jigs"
    _report(work, "eval_jigs", {"shots": [1]})  # a report that does not say its folder is taken as this one's
    assert cli._eval_name(work, str(a)) == "eval_jigs"


def test_a_tilde_the_shell_left_unexpanded_is_the_home_folder(tmp_path, monkeypatch):
    """After "=" bash leaves "~" as typed (--workdir=~/runs/x), and a quoted METAMUSIC_CACHE_DIR='~/mm' too: both had
    made a folder literally named "~" in the current folder."""
    from metamusic.data import cache

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    config = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(cli.__file__))), "configs", "maml_tiny.py")
    args, cfg = cli.parse("run_maml.py", [f"--config={config}", "--workdir=~/runs/x", "--config.data.cache_dir=~/c"])
    assert args["workdir"] == str(tmp_path / "runs" / "x") and cfg.data.cache_dir == str(tmp_path / "c")
    monkeypatch.setenv("METAMUSIC_CACHE_DIR", "~/mm")
    assert cache.default_cache_dir() == str(tmp_path / "mm")


def test_each_scripts_help_names_only_the_flags_of_its_own_modes_with_their_defaults():
    """--help was one text for every script: run_maml.py's named classify's CSV and run_relation.py generate's
    output folder, modes they do not have."""
    for script, spec in cli.SCRIPTS.items():
        text = cli.usage(script)
        assert f"(default {spec['workdir']})" in text and "default train" in text
        generates, classifies = "generate" in spec["modes"], "classify" in spec["modes"]
        assert ("generate:" in text) == generates and ("classify:" in text) == classifies, (script, text)
        assert ("--style" in text) == generates and ("--support" in text) == classifies, (script, text)
