"""Damaged run folders: a broken newest checkpoint, a torn metrics line, a workdir with nothing in it.

Each case first reproduces what a crash or a careless sync leaves behind, then checks the run
resumes from the newest good checkpoint with the same numbers as an undamaged run.
"""

import glob
import json
import logging
import os

import jax
import numpy as np
import pytest

from metamusic import checkpoints as ckpt_lib
from metamusic import experiments
from metamusic.errors import MetamusicError
from metamusic.meta.outer import init_state
from metamusic.train.trainer import train

from train.test_loop import _cfg


def _template(cfg):
    exp = experiments.build(cfg)
    return init_state(exp.algorithm("fomaml"), exp.optimizer("fomaml"), exp.init_params())


def _trained(tmp_path, tag, steps=100):
    cfg = _cfg(steps)
    work = str(tmp_path / tag)
    train(experiments.build(cfg), work, "fomaml")
    return cfg, work, os.path.join(work, "fomaml")


def _same(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _damage(run, step, how):
    step_dir = os.path.join(run, "checkpoints", str(step), "default")
    if how == "metadata":
        os.remove(os.path.join(step_dir, "_METADATA"))
    else:  # one array data file
        os.remove(sorted(glob.glob(os.path.join(step_dir, "d", "*")))[0])


@pytest.mark.parametrize("how", ["metadata", "array"])
def test_damaged_newest_checkpoint_falls_back_and_resumes_identically(tmp_path, caplog, how):
    cfg, work, run = _trained(tmp_path, "damaged")
    _damage(run, 100, how)
    with caplog.at_level(logging.WARNING, logger="metamusic.checkpoints"):
        state = ckpt_lib.load(run, _template(cfg))  # eval/generate path: falls back, moves nothing
    assert int(state.step) == 50
    assert [r.getMessage() for r in caplog.records if "does not restore" in r.getMessage()][0].count("/100") == 1
    assert os.path.isdir(os.path.join(run, "checkpoints", "100"))

    train(experiments.build(cfg), work, "fomaml")  # resumes from 50, sets 100 aside, saves 100 again
    assert os.path.isdir(os.path.join(run, "damaged_checkpoints", "100"))
    _, _, straight = _trained(tmp_path, "straight")
    assert _same(ckpt_lib.load(run, _template(cfg)), ckpt_lib.load(straight, _template(cfg)))


def test_no_restorable_checkpoint_is_one_clear_error(tmp_path):
    cfg, _, run = _trained(tmp_path, "all", steps=50)
    for step in os.listdir(os.path.join(run, "checkpoints")):  # 50 and the first step, which orbax always keeps
        _damage(run, step, "array")
    with pytest.raises(MetamusicError, match="no checkpoint in .* restores"):
        ckpt_lib.load(run, _template(cfg))


def test_checkpoint_of_another_config_is_not_taken_for_damage(tmp_path):
    cfg, work, run = _trained(tmp_path, "other", steps=50)
    cfg.model.hidden = (80, 80)
    with pytest.raises(MetamusicError, match="another config"):
        train(experiments.build(cfg), work, "fomaml")
    assert os.path.isdir(os.path.join(run, "checkpoints", "50"))
    assert not os.path.exists(os.path.join(run, "damaged_checkpoints"))


def test_torn_last_metrics_line_is_dropped_on_resume(tmp_path, caplog):
    cfg, work, run = _trained(tmp_path, "torn", steps=100)
    path = os.path.join(run, "metrics.jsonl")
    lines = open(path).read().splitlines()
    with open(path, "w") as f:  # a crash mid-write: last row cut in half, no newline
        f.write("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    cfg.steps = cfg.baselines.joint_steps = 150
    with caplog.at_level(logging.WARNING, logger="metamusic.train"):
        train(experiments.build(cfg), work, "fomaml")
    assert any("unreadable line" in r.getMessage() for r in caplog.records)
    rows = [json.loads(line) for line in open(path)]
    assert [r["step"] for r in rows] == [50, 150]  # the torn row at 100 is lost, nothing else


def test_reading_an_empty_workdir_creates_nothing(tmp_path):
    cfg = _cfg(10)
    with pytest.raises(MetamusicError, match="train first"):
        ckpt_lib.load(str(tmp_path / "fomaml"), _template(cfg))
    assert os.listdir(tmp_path) == []


class _Stop(Exception):
    pass


def _signal_during_save(mgr, times):
    """Replaces `mgr.save` by one that first receives SIGTERM `times` times, then saves."""
    import signal
    import time

    real = mgr.save

    def save(*args, **kwargs):
        for _ in range(times):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # (Python runs the handler here, in the middle of the save)
        return real(*args, **kwargs)

    mgr.save = save


@pytest.mark.parametrize("times", [1, 2])
def test_sigterm_during_a_save_waits_for_it_and_a_second_one_does_not(tmp_path, times):
    """An interrupt that lands while a step is written and the old one deleted acts after both are done,
    so no step is left half-written or half-deleted; a second interrupt stops the save at once."""
    import signal

    def stop(signum, frame):
        raise _Stop()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        mgr = ckpt_lib.manager(str(tmp_path), every=1, keep=1)
        state = {"w": np.arange(3.0)}
        ckpt_lib.save(mgr, 1, state)
        _signal_during_save(mgr, times)
        with pytest.raises(_Stop):
            ckpt_lib.save(mgr, 2, {"w": np.arange(3.0) + 1})
        assert signal.getsignal(signal.SIGTERM) is stop  # the handler is back
    finally:
        signal.signal(signal.SIGTERM, previous)
    steps = sorted(int(d) for d in os.listdir(tmp_path / "checkpoints") if d.isdigit())
    if times == 1:  # step 2 written whole, step 1 deleted whole
        assert steps == [2] and os.path.isfile(tmp_path / "checkpoints" / "2" / "_CHECKPOINT_METADATA")
        mgr.reload()
        assert np.array_equal(ckpt_lib.restore_step(mgr, 2, state)["w"], np.arange(3.0) + 1)
    else:  # stopped before the save began
        assert steps == [1]
    mgr.close()
