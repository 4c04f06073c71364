"""Failures that used to lose work or print tracebacks (issue 30): each is one `error:` line with exit status 2,
checked before any work, and nothing is written by a refused command."""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from cli.helpers import ROOT, check_one_line, run


def _config_file(tmp_path, name, body):
    p = tmp_path / name
    p.write_text(body)
    return str(p)


def test_config_mistakes_are_one_line(tmp_path):
    raises = _config_file(tmp_path, "raises.py", "raise ValueError('boom')\n")
    not_cfg = _config_file(tmp_path, "dict.py", "def get_config():\n    return {'steps': 3}\n")
    wrong_type = _config_file(tmp_path, "wrong.py", "from configs import maml_tiny\n\ndef get_config():\n"
                              "    c = maml_tiny.get_config()\n    c.eval.shots = 5\n    return c\n")
    cases = [
        (["--config.meta.inner_lr=inf"], "meta.inner_lr=inf is out of range; it must be a finite number"),
        (["--config.meta.inner_lr=nan"], "meta.inner_lr=nan is out of range"),
        (["--config.eval.shots="], "eval.shots=() must not be empty"),
        (["--config.data.near_dup_threshold=1.5"], "data.near_dup_threshold=1.5 is out of range"),
        ([f"--config={raises}"], "raised ValueError on import: boom"),
        ([f"--config={not_cfg}"], "get_config() returned a dict, not an ml_collections.ConfigDict"),
        ([f"--config={wrong_type}"], "get_config() raised TypeError"),
        (["--workdir="], "--workdir= is empty"),
    ]
    wd = tmp_path / "wd"
    with ThreadPoolExecutor(2) as pool:
        procs = list(pool.map(lambda c: run("run_maml.py", "--config=configs/maml_tiny.py", f"--workdir={wd}",
                                             "--mode=train", *c[0]), cases))
    for (args, fragment), proc in zip(cases, procs):
        check_one_line(proc, fragment)
    assert not os.path.exists(wd / "config.json")  # validated before the first write


def test_unwritable_workdir_is_one_line(tmp_path):
    afile = tmp_path / "f"
    afile.write_text("x")  # a folder under a file can never be created, whoever runs the test
    check_one_line(run("run_maml.py", "--config=configs/maml_tiny.py", f"--workdir={afile}/run", "--mode=train"),
                   f"--workdir={afile}/run is not writable")
    dangling = tmp_path / "link"
    dangling.symlink_to(tmp_path / "gone")  # e.g. runs/ linked to a disk that is not mounted
    check_one_line(run("run_maml.py", "--config=configs/maml_tiny.py", f"--workdir={dangling}", "--mode=train"),
                   f"--workdir={dangling} is a symlink to {tmp_path / 'gone'}, which does not exist")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        if not os.access(ro, os.W_OK):  # (root writes anywhere: the permission case runs for other users)
            check_one_line(run("run_maml.py", "--config=configs/maml_tiny.py", f"--workdir={ro}/run",
                               "--mode=train"), "is not writable")
    finally:
        os.chmod(ro, 0o755)


def test_out_that_is_a_file_is_one_line(tmp_path):
    wd = tmp_path / "wd"
    wd.mkdir()
    afile = tmp_path / "f"
    afile.write_text("x")
    check_one_line(run("run_maml.py", "--config=configs/maml_tiny.py", f"--workdir={wd}", "--mode=generate",
                       "--style=oneills/jig", f"--out={afile}"), f"--out={afile} is a file")


def test_a_second_run_into_a_busy_workdir_is_refused_and_a_resume_under_another_config_too(tmp_path):
    wd = tmp_path / "wd"
    args = ("--config=configs/sinusoid.py", f"--workdir={wd}", "--mode=train", "--config.steps=1000000",
            "--config.log_every=100", "--config.checkpoint_every=100")
    first = subprocess.Popen([sys.executable, "run_maml.py", *args], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        ck = wd / "maml" / "checkpoints"
        for _ in range(1200):  # until the first run (holding the lock) has written a checkpoint
            if ck.is_dir() and any(d.isdigit() for d in os.listdir(ck)):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the first run wrote no checkpoint: " + first.stderr.read()[-2000:] if first.poll() else "")
        second = run("run_maml.py", *args, "--config.seed=1")
        check_one_line(second, f"--workdir={wd} is in use by another run (pid {first.pid})")
        assert json.load(open(wd / "config.json"))["seed"] == 0  # the first run's config is untouched
    finally:
        first.kill()
        first.communicate(timeout=60)
    # the first run's workdir: resuming it with another seed or model is refused, and changes nothing
    before = open(wd / "config.json").read()
    check_one_line(run("run_maml.py", *args, "--config.seed=1"), "holds a run trained with seed=0 (now 1)")
    check_one_line(run("run_maml.py", *args, "--config.model.hidden=(8,)"), "model.hidden=[40, 40] (now [8])")
    assert open(wd / "config.json").read() == before


def test_too_few_styles_for_episodes_names_the_styles_not_a_clipped_ways(tmp_path):
    import synth

    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=10)  # 4 styles: meta-val gets one
    proc = run("run_relation.py", f"--config.data.root={root}", "--config.data.min_tunes=4", "--config.data.ways=2",
               f"--config.data.cache_dir={tmp_path / 'cache'}", f"--workdir={tmp_path / 'wd'}", "--mode=train",
               "--config.steps=2", "--config.progress=False")
    check_one_line(proc, "classification episodes need at least 2 styles, and these tunes have 1 (")
    assert "data.ways=1" not in proc.stderr  # the user set 2


def _train_until_checkpoint(args, ck, at_least=100):
    """A long sinusoid training run, returned once it has written a checkpoint of step >= at_least."""
    proc = subprocess.Popen([sys.executable, "run_maml.py", *args, "--config.steps=1000000"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(1200):
        if ck.is_dir() and any(d.isdigit() and int(d) >= at_least for d in os.listdir(ck)):
            break
        time.sleep(0.1)
    return proc


def _corrupt(step_dir):
    """Flips bytes of every array data file of one checkpoint."""
    for root, _, files in os.walk(step_dir):
        if os.path.basename(root) == "d":
            for f in files:
                p = os.path.join(root, f)
                data = bytearray(open(p, "rb").read())
                for i in range(10, len(data), 7):
                    data[i] ^= 0xFF
                open(p, "wb").write(data)


def _interrupted(proc, sig, status, word, wd):
    import signal

    proc.send_signal(signal.Signals(sig))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"interrupted ({word})") and str(wd) in lines[0], err[-2000:]


SINUSOID = ["--config=configs/sinusoid.py", "--mode=train", "--config.log_every=100", "--config.checkpoint_every=100",
            "--config.baselines.joint_steps=10",  # (the baseline trained after the algorithm: kept short)
            "--config.progress=False"]


def test_sigterm_is_one_line_and_a_damaged_checkpoint_one_warning_on_resume(tmp_path):
    """SIGTERM ends a run with one line (exit 143) and no cut-short checkpoint folder; its newest checkpoint
    then damaged, the resume is one warning line, falls back to the one before, and the timing table counts
    the steps it actually ran."""
    wd = tmp_path / "wd"
    args = SINUSOID + [f"--workdir={wd}"]
    ck = wd / "maml" / "checkpoints"
    _interrupted(_train_until_checkpoint(args, ck, at_least=200), 15, 143, "SIGTERM", wd)
    steps = sorted(int(d) for d in os.listdir(ck) if d.isdigit())
    assert not any("orbax-checkpoint-tmp" in d for d in os.listdir(ck)) and len(steps) >= 2
    _corrupt(ck / str(steps[-1]))
    proc = run("run_maml.py", *args, f"--config.steps={steps[-1] + 100}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stderr.index("time per phase")  # (the timing table, printed beside the progress bars)
    lines = [line for line in proc.stderr[:table].splitlines() if line.strip()]
    assert len(lines) == 1 and "does not restore" in lines[0], proc.stderr[-3000:]
    row = next(line for line in proc.stderr[table:].splitlines() if line.startswith("train maml"))
    assert row.split("|")[2].strip() == str(steps[-1] + 100 - steps[-2])  # resumed from the one before


@pytest.mark.slow  # (the same path as SIGTERM, which the fast suite runs above)
def test_ctrl_c_is_one_line_and_the_run_resumes(tmp_path):
    wd = tmp_path / "wd"
    args = SINUSOID + [f"--workdir={wd}"]
    ck = wd / "maml" / "checkpoints"
    _interrupted(_train_until_checkpoint(args, ck), 2, 130, "Ctrl-C", wd)
    last = max(int(d) for d in os.listdir(ck) if d.isdigit())
    again = run("run_maml.py", *args, f"--config.steps={last + 100}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert max(int(d) for d in os.listdir(ck) if d.isdigit()) == last + 100


def test_a_workdir_that_cannot_be_taken_as_it_is_gets_one_line_and_keeps_its_state(tmp_path, capsys):
    """Through cli.main in this process, on one tiny trained run: a config.json this command adds is taken back
    when the checkpoints refuse its config (so the right command still resumes); a damaged config.json, a run of
    another family, a config file that is not Python or lacks fields, a partly trained run: one line each."""
    from metamusic import cli, run_checks
    from metamusic.workdir import config_diffs

    import ml_collections

    wd = tmp_path / "run"
    base = ["--config=configs/maml_tiny.py", f"--workdir={wd}", "--config.meta.algorithm=fomaml"]
    assert cli.main("run_maml.py", base + ["--mode=train"]) == 0
    capsys.readouterr()

    # config.json deleted, then a command with another model size: refused by the checkpoints, and the
    # config.json it wrote is taken back, so the run's own config resumes
    os.remove(wd / "config.json")
    assert cli.main("run_maml.py", base + ["--mode=train", "--config.model.lstm.hidden=32"]) == 2
    err = capsys.readouterr().err
    assert "holds a state of another config" in err and "Traceback" not in err and "Exception ignored" not in err
    assert not os.path.exists(wd / "config.json")
    assert cli.main("run_maml.py", base + ["--mode=train"]) == 0
    assert json.load(open(wd / "config.json"))["model"]["lstm"]["hidden"] != 32

    # a stopped run: evaluating it says which methods are short of their steps
    run_checks.warn_if_partly_trained(cli_build(base + ["--config.steps=600"]), str(wd))
    assert "partly trained models (fomaml at step" in capsys.readouterr().err
    run_checks.warn_if_partly_trained(cli_build(base), str(wd))
    assert capsys.readouterr().err == ""

    # a damaged config.json: training names it and what to do; evaluation warns and goes on
    good = (wd / "config.json").read_bytes()
    (wd / "config.json").write_bytes(b"\0" * len(good))
    assert cli.main("run_maml.py", base + ["--mode=train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.json is damaged (JSONDecodeError" in err[0] and "delete it" in err[0]
    run_checks.warn_if_trained_differently(cli_build(base).cfg, str(wd))
    assert "is damaged" in capsys.readouterr().err

    # another family's run, refused before any work by its family and script
    other = json.loads(good)
    other["experiment"] = "classify"
    (wd / "config.json").write_text(json.dumps(other))
    for mode in ("eval", "generate"):
        assert cli.main("run_maml.py", base + [f"--mode={mode}"] + (["--style=oneills/jig"] if mode == "generate" else [])) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "holds a classify run, not a melody run (its script is run_relation.py)" in err[0]

    # a scorer or melody run of the wrong family, named by its field before any work; a missing one said at once
    (wd / "config.json").write_bytes(good)
    assert cli.main("run_maml.py", base + ["--mode=eval", f"--config.eval.scorer={wd}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"eval.scorer={wd}: {wd} holds a melody run, not a classify run" in err[0], err
    run_checks.check_runs_read_by_the_evaluation(cli.parse("run_maml.py", base + [f"--config.eval.scorer={tmp_path}"])[1])
    assert f"warning: eval.scorer={tmp_path}: no trained classify run there" in capsys.readouterr().err

    # config files that are not Python, or lack a field the family reads
    for body, name, said in (("{}", "config.json", "a config is a Python file defining get_config()"),
                             ("import ml_collections\n\ndef get_config():\n    c = ml_collections.ConfigDict()\n"
                              "    c.experiment = 'melody'\n    c.steps = 3\n    return c\n", "few.py",
                              "the config has no field 'seed', which a melody run needs")):
        assert cli.main("run_maml.py", [f"--config={_config_file(tmp_path, name, body)}",
                                        f"--workdir={tmp_path / 'x'}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err

    # one corpus folder spelled two ways is the same run's data
    (tmp_path / "corpus").mkdir()
    then = ml_collections.ConfigDict({"data": {"root": str(tmp_path / "corpus")}})
    for spelled in (str(tmp_path / "corpus") + "/", os.path.relpath(tmp_path / "corpus")):
        assert config_diffs(ml_collections.ConfigDict({"data": {"root": spelled}}), then, ("data",)) == []
    assert config_diffs(ml_collections.ConfigDict({"data": {"root": str(tmp_path)}}), then, ("data",))


def cli_build(argv):
    """The experiment a run_maml.py command line builds (its corpus loaded)."""
    from metamusic import cli, experiments

    _, cfg = cli.parse("run_maml.py", argv)
    return experiments.build(cfg, experiments.load_data(cfg))
