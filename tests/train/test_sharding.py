"""Sharding the meta-batch over devices and processes gives the single-device result.

Each case runs in subprocesses (tests/train/sharding_worker.py): 4 virtual CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=4), or two jax.distributed processes
on localhost with gloo collectives; this test process's own devices are untouched.
"""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sharding_worker.py")


def _env(devices: int):
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _run(args, devices: int, timeout=240):
    return subprocess.Popen([sys.executable, WORKER, *map(str, args)], env=_env(devices), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait(procs, timeout=240):
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        assert p.returncode == 0, out[-3000:]


def _assert_same(a, b, rtol=2e-5, atol=1e-6):
    assert sorted(a) == sorted(b) and len(a) > 3
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=k)


def _assert_off_equals_on(tmp_path, mode: str):
    """Runs a worker mode on 4 virtual devices; its 'off/...' (one device) and 'on/...' results must agree."""
    _wait([_run([mode, tmp_path / f"{mode}.npz", 4], 4)])
    res = np.load(tmp_path / f"{mode}.npz")
    off = {k[4:]: res[k] for k in res.files if k.startswith("off/")}
    on = {k[3:]: res[k] for k in res.files if k.startswith("on/")}
    _assert_same(off, on)


def test_sharded_training_loops_match_single_device(tmp_path):
    """MAML-family and relation-network training loops: sharding.devices=4 vs off, 4 virtual devices."""
    _assert_off_equals_on(tmp_path, "loops")


def test_evaluation_split_over_devices_matches_one_device(tmp_path):
    """Evaluation's episodes split over 2 virtual devices (a chunk padded to split evenly), and the oracle's
    fits run as jobs on both, give the one-device results."""
    _wait([_run(["eval", tmp_path / "eval.npz", 2], 2)])
    res = np.load(tmp_path / "eval.npz")
    keys = [k[4:] for k in res.files if k.startswith("off/")]
    assert {"nll", "accuracy", "members"} <= set(keys) and any(k.startswith("oracle") for k in keys)
    for k in keys:
        np.testing.assert_allclose(res[f"on/{k}"], res[f"off/{k}"], rtol=1e-6, atol=1e-7, err_msg=k)


@pytest.mark.slow  # 45 s; the MAML and relation loops' sharding is checked in the default run
def test_sharded_meta_gan_steps_match_single_device(tmp_path):
    """Meta-GAN (Reptile over generator and critic) steps: 4 virtual devices vs one."""
    _assert_off_equals_on(tmp_path, "gan")


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # 37 s; the default run's two-process loop test below also matches one process
@pytest.mark.timeout(300)
def test_two_processes_match_one(tmp_path):
    """Two jax.distributed processes (one CPU device each, gloo) meta-train like one process alone."""
    port = _free_port()
    procs = [_run(["steps", tmp_path / f"proc{i}.npz", -1, port, i, 2], 1) for i in range(2)]
    procs.append(_run(["steps", tmp_path / "single.npz", 0], 1))
    _wait(procs)
    single = dict(np.load(tmp_path / "single.npz"))
    for i in range(2):
        _assert_same(single, dict(np.load(tmp_path / f"proc{i}.npz")))


@pytest.mark.timeout(300)
def test_two_processes_write_metrics_tensorboard_and_checkpoints_once(tmp_path):
    """Two jax.distributed processes training into one workdir: one metrics row per logged step, one
    TensorBoard event file, checkpoints that restore to the single-process result."""
    import json

    port = _free_port()
    (tmp_path / "multi").mkdir()
    (tmp_path / "single").mkdir()
    procs = [_run(["loop", tmp_path / "multi" / f"proc{i}.npz", -1, port, i, 2], 1) for i in range(2)]
    procs.append(_run(["loop", tmp_path / "single" / "single.npz", 0], 1))
    _wait(procs)
    run = tmp_path / "multi" / "work" / "fomaml"
    rows = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert [r["step"] for r in rows] == [2, 4, 6, 6]  # the last 6: the end-of-run validation row
    assert len(os.listdir(run / "tb")) == 1
    assert sorted(int(d) for d in os.listdir(run / "checkpoints") if d.isdigit())[-1] == 6
    single_rows = [json.loads(line) for line in open(tmp_path / "single" / "work" / "fomaml" / "metrics.jsonl")]
    assert [r["step"] for r in single_rows] == [r["step"] for r in rows]
    single = dict(np.load(tmp_path / "single" / "single.npz"))
    for i in range(2):
        _assert_same(single, dict(np.load(tmp_path / "multi" / f"proc{i}.npz")))
    _assert_same(single, _restored(run))  # the two processes' checkpoint, read back by one process


def _restored(run):
    import synth
    from metamusic import checkpoints, experiments
    from metamusic.meta.outer import init_state
    from train.sharding_worker import _flat, _melody_cfg

    cfg = _melody_cfg(0, "fomaml")
    exp = experiments.build(cfg, synth.token_corpus())
    state = checkpoints.load(str(run), init_state(exp.algorithm("fomaml"), exp.optimizer("fomaml"), exp.init_params()))
    return {k: np.asarray(v) for k, v in _flat(state.meta).items()}
