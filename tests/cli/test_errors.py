"""Every error a user can cause, run as a command: exit status 2, one line on stderr, no traceback.

Config and flag errors are caught before any corpus is read (data.root points nowhere
in most cases below, so reaching the corpus would fail differently).
"""

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

import synth

from cli.helpers import check_one_line as _check_one_line, run as _run


CASES = [  # (script, args, a fragment the one line must contain)
    ("run_maml.py", ["--config.foo=1"], "unknown config field 'foo'"),
    ("run_maml.py", ["--config.meta.inner_step=3"], "did you mean meta.inner_steps?"),
    ("run_maml.py", ["--config=nope.py"], "--config=nope.py: no such file"),
    ("run_maml.py", ["--config.model.lstm.impl=foo"], "model.lstm.impl='foo' is not allowed; choose one of"),
    ("run_maml.py", ["--config.meta.inner_steps=0"], "meta.inner_steps=0 is out of range; it must be >= 1"),
    ("run_maml.py", ["--config.data.length=0"], "data.length=0 is out of range; it must be >= 2"),
    ("run_maml.py", ["--config.meta.batch=0"], "meta.batch=0 is out of range"),
    ("run_maml.py", ["--config.steps=-3"], "steps=-3 is out of range"),
    ("run_maml.py", ["--config.data.shots=0"], "data.shots=0 is out of range"),
    ("run_maml.py", ["--config.data.queries=0"], "data.queries=0 is out of range"),
    ("run_maml.py", ["--config.eval.shots=0,5"], "eval.shots (each)=0 is out of range"),
    ("run_maml.py", ["--config.meta.algorithm=mamll"], "meta.algorithm='mamll' is not allowed"),
    ("run_maml.py", ["--config.steps=many"], "steps='many' must be an integer"),
    ("run_maml.py", ["--mode=generate", "--style=/no/such/folder"], "--style=/no/such/folder: no such folder"),
    ("run_maml.py", ["--mode=generate"], "--mode=generate needs --style"),
    ("run_maml.py", ["--mode=bogus"], "--mode='bogus' is not allowed"),
    ("run_maml.py", ["--shots=0", "--mode=generate", "--style=oneills/jig"], "--shots=0 is out of range"),
    ("run_maml.py", ["--config.data.root=/no/such/root"], "data.root='/no/such/root' does not exist"),
    ("run_maml.py", ["--mode=eval", "--config.eval.root=/no/such/root"], "eval.root='/no/such/root' does not exist"),
    ("run_maml.py", ["--config.meta.init=warm"], "meta.init='warm' is not allowed"),
    ("run_maml.py", ["--config.meta.per_algorithm.cavia.stepz=3"], "'stepz' is not allowed; choose one of "),
    ("run_maml.py", ["--config.meta.per_algorithm.cavia.stepz=3"], "; did you mean steps?"),
    ("run_maml.py", ["--config.meta.algorithm=fomamll"], "; did you mean fomaml?"),
    ("run_maml.py", ["--config.meta.per_algorithm.caviaa.steps=3"], "meta.per_algorithm (each name)='caviaa'"),
    ("run_maml.py", ["--config.meta.per_algorithm.amortized.steps=0"], "meta.per_algorithm.amortized.steps=0 is out"),
    ("run_maml.py", ["--config.eval.finetune_after=amortised"], "eval.finetune_after (each)='amortised'"),
    ("run_maml.py", ["--config=configs/gan.py"], "experiment='gan' cannot run with run_maml.py"),
    ("run_maml.py", ["--wokdir=x"], "unknown flag --wokdir; did you mean --workdir?"),
    ("run_maml.py", ["--config=configs/sinusoid.py", "--config.meta.inner_lr=0"], "meta.inner_lr=0.0 is out of range"),
    ("run_gan.py", ["--config.gan.loss=lsgan"], "gan.loss='lsgan' is not allowed"),
    ("run_gan.py", ["--config.meta.algorithm=metasgd"], "meta.algorithm='metasgd' is not allowed"),
    ("run_relation.py", ["--config.data.ways=1"], "data.ways=1 is out of range"),
    ("run_relation.py", ["--config.batch=4"], "unknown config field 'batch'; did you mean"),
    ("run_relation.py", ["--config.model.encoder=lstm"], "model.encoder='lstm' is not allowed"),
    ("run_relation.py", ["--mode=classify"], "--mode=classify needs --support"),
    ("run_relation.py", ["--config.model.inputs=midi"], "model.inputs='midi' is not allowed"),
    ("run_relation.py", ["--config.model.relation_prior=cosine"], "model.relation_prior='cosine' is not allowed"),
    ("run_relation.py", ["--config.meta.init=contrastive"], "meta.init='contrastive' starts the episodic heads"),
    ("run_relation.py", ["--config.meta.freeze_encoder=True"], "meta.freeze_encoder=True keeps the encoder"),
    ("run_relation.py", ["--config.model.encoder=transformer", "--config.data.length=1024"],
     "data.length=1024 is above the Transformer encoder's 512 positions"),
    ("run_relation.py", ["--config.eval.length=1"], "eval.length=1 is out of range"),
    ("run_relation.py", ["--config.eval.tune_episodes=-1"], "eval.tune_episodes=-1 is out of range"),
    ("run_relation.py", ["--config.data.melody=top"], "data.melody='top' is not allowed"),
    ("run_relation.py", ["--config.data.train_ways=1"], "data.train_ways=1 is out of range"),
    ("run_relation.py", ["--mode=classify", "--support=s", "--query=q", "--method=protonet"],
     "--method does not apply to --mode=classify (it reads --support, --query, --out)"),
    ("run_maml.py", ["--mode=eval", "--style=oneills/jig"], "--style does not apply to --mode=eval"),
    ("run_gan.py", ["--mode=generate", "--style=oneills/jig", "--query=q"], "--query does not apply to --mode=generate"),
]


def test_config_and_flag_errors_exit_2_with_one_line(tmp_path, capsys):
    """Every case through `cli.main`, the function each entry script calls with its command line, in this
    process: a new Python process per case would cost its imports dozens of times over; the next test runs
    the scripts themselves."""
    from types import SimpleNamespace

    from metamusic import cli

    afile = tmp_path / "a_file"
    afile.write_text("x")
    capsys.readouterr()
    for script, args, fragment in CASES + [("run_maml.py", [f"--workdir={afile}"], f"--workdir={afile} is a file")]:
        rc = cli.main(script, args)
        out = capsys.readouterr()
        _check_one_line(SimpleNamespace(returncode=rc, stderr=out.err), fragment)


def test_each_entry_script_exits_2_with_one_line_as_its_own_process():
    cases = [CASES[0], next(c for c in CASES if c[0] == "run_gan.py"), next(c for c in CASES if c[0] == "run_relation.py")]
    with ThreadPoolExecutor(2) as pool:  # each case is its own Python process
        procs = list(pool.map(lambda c: _run(c[0], *c[1]), cases))
    for (script, args, fragment), proc in zip(cases, procs):
        _check_one_line(proc, fragment)


def test_too_many_shots_for_the_corpus_names_the_style_and_fields(tmp_path):
    root = synth.make_style_corpus(str(tmp_path / "c"), n_tunes=6)
    env = dict(os.environ, METAMUSIC_CACHE_DIR=str(tmp_path / "cache"))
    proc = _run("run_maml.py", "--config=configs/maml_tiny.py", f"--config.data.root={root}",
                "--config.data.min_tunes=4", "--config.data.shots=9", f"--workdir={tmp_path / 'w'}", env=env)
    _check_one_line(proc, "too few for")  # 6 tunes per style cannot give 9 support + 2 query tunes
    assert "data.shots" in proc.stderr and "data.min_tunes" in proc.stderr


@pytest.mark.parametrize("algorithm", ["anil"])
def test_sinusoid_command_line_runs_anil_and_the_joint_baseline(tmp_path, algorithm):
    wd = tmp_path / "sin"
    proc = _run("run_maml.py", "--config=configs/sinusoid.py", f"--workdir={wd}", "--mode=all",
                f"--config.meta.algorithm={algorithm}", "--config.steps=30", "--config.baselines.joint_steps=30",
                "--config.log_every=10", "--config.checkpoint_every=10", "--config.progress=False",
                "--config.eval.episodes=20", "--config.eval.steps=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    res = json.load(open(wd / "eval.json"))
    assert set(res) == {algorithm, "joint"}
    assert len(res[algorithm]["mse"]) == 4 and all(v > 0 for v in res[algorithm]["mse"])
    assert res["joint"]["lr"] in (0.001, 0.003, 0.01, 0.02)  # chosen on validation tasks
    # a table, as the other families report (it printed eval.json's lists and wrote no eval.md)
    md = open(wd / "eval.md").read()
    r = res[algorithm]
    assert f"| {algorithm} | {r['lr']:g} | {r['mse'][0]:.3f} +- {r['ci95'][0]:.3f} |" in md
    assert "| method | inner lr | k=0 | k=1 | k=3 |" in md and md in proc.stdout


def test_eval_warns_when_the_run_was_trained_with_other_settings(tmp_path, capsys):
    from metamusic import cli, run_checks

    wd = tmp_path / "run"
    wd.mkdir()
    _, cfg = cli.parse("run_maml.py", ["--config=configs/maml_tiny.py", f"--workdir={wd}", "--mode=eval"])
    trained = cfg.copy_and_resolve_references()
    trained.meta.inner_lr = 0.5
    (wd / "config.json").write_text(trained.to_json_best_effort())
    run_checks.warn_if_trained_differently(cfg, str(wd))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning:") and f"meta.inner_lr=0.5 (now {cfg.meta.inner_lr})" in err[0]
    (wd / "config.json").write_text(cfg.to_json_best_effort())
    run_checks.warn_if_trained_differently(cfg, str(wd))
    assert capsys.readouterr().err == ""


def test_a_run_prints_and_records_the_time_of_each_phase(tmp_path, capsys):
    """The phase table (issue 14): each method's training with the steps this command ran; a resumed
    command that has nothing left to train records 0 steps for it."""
    import json

    from metamusic import cli

    argv = ["--config=configs/sinusoid.py", f"--workdir={tmp_path}", "--mode=train", "--config.steps=6",
            "--config.baselines.joint_steps=4", "--config.log_every=2", "--config.checkpoint_every=2",
            "--config.progress=False", "--config.meta.algorithm=fomaml"]
    assert cli.main("run_maml.py", argv) == 0
    assert "time per phase" in capsys.readouterr().err
    assert cli.main("run_maml.py", argv) == 0  # resumed: already trained
    first, second = [json.loads(l) for l in open(tmp_path / "timings.jsonl")]
    rows = {r["phase"]: r for r in first["phases"]}
    assert rows["train fomaml"]["steps"] == 6 and rows["train joint"]["steps"] == 4
    assert list(rows)[0].startswith("data") and "evaluate" not in rows  # --mode=train: no eval phase
    assert {r["phase"]: r.get("steps") for r in second["phases"]}["train fomaml"] == 0
