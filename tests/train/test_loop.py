"""The shared loop: SIGKILL + resume equals an uninterrupted run; logs; stop on repeated non-finite steps."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import sinusoid as sin_cfg
from metamusic import baselines, experiments
from metamusic import checkpoints as ckpt_lib
from metamusic.errors import MetamusicError
from metamusic.eval import sinusoid as sin_eval
from metamusic.experiments import sinusoid
from metamusic.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cfg(steps, algorithm="fomaml"):
    c = sin_cfg.get_config()
    c.steps, c.checkpoint_every, c.log_every, c.progress = steps, 50, 50, False
    c.baselines.joint_steps = steps
    c.meta.algorithm = algorithm
    return c


def _final_state(workdir, cfg):
    from metamusic.meta.outer import init_state

    exp = experiments.build(cfg)
    name = cfg.meta.algorithm
    tmpl = init_state(exp.algorithm(name), exp.optimizer(name), exp.init_params())
    return ckpt_lib.load(os.path.join(workdir, name), tmpl)


def test_sigkill_and_resume_equals_uninterrupted(tmp_path):
    steps = 1000
    killed = str(tmp_path / "killed")
    code = ("from configs import sinusoid as c; from metamusic import experiments; "
            "from metamusic.train.trainer import train; cfg = c.get_config(); cfg.steps = %d; "
            "cfg.checkpoint_every = 50; cfg.log_every = 50; cfg.progress = False; cfg.meta.algorithm = 'fomaml'; "
            "train(experiments.build(cfg), %r, 'fomaml')" % (steps, killed))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    ckdir = os.path.join(killed, "fomaml", "checkpoints")
    deadline = time.time() + 120
    while time.time() < deadline:
        done = [int(d) for d in os.listdir(ckdir) if d.isdigit()] if os.path.isdir(ckdir) else []
        if done and max(done) >= 200:
            break
        if proc.poll() is not None:
            pytest.fail("training finished before it could be killed")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted_at = max(int(d) for d in os.listdir(ckdir) if d.isdigit())
    assert 200 <= interrupted_at < steps

    cfg = _cfg(steps)
    train(experiments.build(cfg), killed, "fomaml")  # resumes
    straight = str(tmp_path / "straight")
    train(experiments.build(cfg), straight, "fomaml")
    a, b = _final_state(killed, cfg), _final_state(straight, cfg)
    assert int(a.step) == int(b.step) == steps
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    rows = [json.loads(l) for l in open(os.path.join(killed, "fomaml", "metrics.jsonl"))]
    assert [r["step"] for r in rows] == list(range(50, steps + 1, 50))  # replayed steps not logged twice
    assert os.listdir(os.path.join(killed, "fomaml", "tb"))


def test_short_sinusoid_run_lowers_post_adaptation_loss(tmp_path):
    cfg = _cfg(800, "maml")
    cfg.eval.episodes, cfg.eval.steps = 100, 10
    exp = experiments.build(cfg)
    for name in exp.methods:
        train(exp, str(tmp_path), name)
    res = sin_eval.evaluate(exp, str(tmp_path))
    mse = res["maml"]["mse"]
    assert mse[1] < 0.85 * mse[0] and mse[10] < mse[1]
    assert res[baselines.JOINT]["lr"] in cfg.baselines.finetune_lrs


def test_repeated_non_finite_steps_stop_the_run(tmp_path, monkeypatch):
    cfg = _cfg(50)
    cfg.max_bad_streak = 3
    real = sinusoid.sample_tasks

    def poisoned(rng, batch, k, query=None):
        t = real(rng, batch, k, query)
        return t._replace(query=(t.query[0], t.query[1] * np.nan))

    monkeypatch.setattr(sinusoid, "sample_tasks", poisoned)
    with pytest.raises(MetamusicError, match="consecutive non-finite"):
        train(experiments.build(cfg), str(tmp_path), "fomaml")
