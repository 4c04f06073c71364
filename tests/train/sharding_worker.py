"""Subprocess body of tests/train/test_sharding.py (device count and jax.distributed are per process).

    python sharding_worker.py loops OUT.npz DEVICES           # melody + relation training loops, sharding off and on
    python sharding_worker.py gan OUT.npz DEVICES             # meta-GAN (Reptile) steps, sharding off and on
    python sharding_worker.py steps OUT.npz DEVICES [PORT PROCESS_ID NUM_PROCESSES]
        # a few MAML meta-steps through sharding.distribute; with PORT, one of several jax.distributed processes
    python sharding_worker.py eval OUT.npz DEVICES            # evaluation curves and the oracle fits, one device and all
    python sharding_worker.py loop OUT.npz DEVICES [PORT PROCESS_ID NUM_PROCESSES]
        # the training loop into dirname(OUT)/work (shared by the processes), final params to OUT
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for synth

import jax  # noqa: E402
import numpy as np  # noqa: E402


def _flat(tree):
    return {jax.tree_util.keystr(p): np.asarray(x) for p, x in jax.tree_util.tree_leaves_with_path(tree)}


def _melody_cfg(devices, algorithm="maml"):
    from configs import maml_tiny

    c = maml_tiny.get_config()
    c.meta.batch, c.steps, c.checkpoint_every, c.log_every = 4, 3, 2, 1
    c.meta.algorithm = algorithm
    c.meta.init = "random"  # the loop alone: no joint model to start from in these workdirs
    c.sharding.devices = devices
    c.sharding.cpu_devices = 0  # the device count is the argument's alone
    return c


def loops(out, devices):
    """Both loops with sharding off, then over `devices` devices; results keyed 'off/...' and 'on/...'."""
    import synth
    from configs import relation as rel_cfg
    from metamusic import experiments
    from metamusic.train.trainer import train

    from metamusic.train import sharding

    corpus = synth.token_corpus()
    cpu = _melody_cfg(0)
    cpu.sharding.cpu_devices = 2  # the configs' CPU split: a mesh over the first 2 of the visible devices
    assert sharding.mesh_from_config(cpu).devices.size == 2
    res = {}
    for tag, n in (("off", 0), ("on", devices)):
        with tempfile.TemporaryDirectory() as work:
            state = train(experiments.build(_melody_cfg(n, "fomaml"), corpus), work, "fomaml")
            assert len(state.meta["params"]["params"]["head"]["kernel"].sharding.device_set) == max(n, 1)
            res.update({f"{tag}/melody" + k: v for k, v in _flat(state.meta).items()})
            c = rel_cfg.get_config()
            c.steps, c.meta.batch, c.log_every, c.eval_every, c.checkpoint_every, c.progress = 3, 4, 1, 0, 2, False
            c.data.ways, c.data.shots, c.data.queries, c.data.length = 3, 2, 2, 24
            c.model.conv.dim, c.model.conv.layers, c.model.relation_hidden = 16, 2, 16
            c.eval.val_tasks = 4
            c.sharding.devices = n
            state = train(experiments.build(c, corpus), work, "relation")
            res.update({f"{tag}/relation" + k: v for k, v in _flat(state.meta).items()})
    np.savez(out, **res)


def steps(out, devices, n_steps=3):
    import synth
    from metamusic import experiments
    from metamusic.meta.outer import init_state, make_outer_step
    from metamusic.train import sharding

    cfg = _melody_cfg(devices)
    exp = experiments.build(cfg, synth.token_corpus())
    algo, tx = exp.algorithm("maml"), exp.optimizer("maml")
    state = init_state(algo, tx, exp.init_params())
    sample = exp.train_sampler("maml")
    step, sample, state = sharding.distribute(make_outer_step(algo, tx), sample, state,
                                              sharding.mesh_from_config(cfg))
    for i in range(n_steps):
        batch = sample(i)
        assert len(jax.tree.leaves(batch)[0].sharding.device_set) == max(len(jax.devices()) if devices else 1, 1)
        state, metrics = step(state, batch, jax.random.fold_in(jax.random.PRNGKey(cfg.seed), i), None)
    np.savez(out, loss=np.asarray(metrics["loss"]), **_flat(state.meta))


def loop(out, devices):
    """The whole training loop (metrics, TensorBoard, checkpoints) into OUT's folder/work, sharded over all
    devices; with jax.distributed, every process runs this with the same workdir, as on a shared disk."""
    import synth
    from metamusic import experiments
    from metamusic.train.trainer import train

    cfg = _melody_cfg(devices, "fomaml")
    cfg.steps, cfg.checkpoint_every, cfg.log_every = 6, 2, 2
    work = os.path.join(os.path.dirname(out), "work")
    state = train(experiments.build(cfg, synth.token_corpus()), work, "fomaml")
    np.savez(out, **_flat(state.meta))


def gan_steps(out, devices, n_steps=2):
    """Meta-GAN (Reptile) outer steps through sharding.distribute, off and over `devices` devices."""
    import synth
    from configs import gan_tiny
    from metamusic import experiments
    from metamusic.meta.outer import init_state, make_outer_step
    from metamusic.train import sharding

    cfg = gan_tiny.get_config()
    cfg.meta.batch, cfg.meta.inner_steps = 4, 1
    exp = experiments.build(cfg, synth.token_corpus())
    res = {}
    for tag, n in (("off", 0), ("on", devices)):
        algo, tx = exp.algorithm("reptile"), exp.optimizer("reptile")
        state = init_state(algo, tx, exp.init_params())
        sample = exp.train_sampler("reptile")
        step, sample, state = sharding.distribute(make_outer_step(algo, tx), sample, state, sharding.make_mesh(n))
        for i in range(n_steps):
            state, _ = step(state, sample(i), jax.random.fold_in(jax.random.PRNGKey(cfg.seed), i), None)
        assert len(jax.tree.leaves(state.meta)[0].sharding.device_set) == max(n, 1)
        res.update({f"{tag}/gan" + k: v for k, v in _flat(state.meta).items()})
    np.savez(out, **res)


def eval_curves(out, devices):
    """Evaluation's per-episode curves (eval.chunked.adapt_curves: FOMAML's adaptation, 7 episodes in chunks
    of 4, so the mesh pads one) on one device ('off/') and split over `devices` devices ('on/')."""
    import synth
    from metamusic import devices as devs
    from metamusic import experiments
    from metamusic.eval.chunked import adapt_curves
    from metamusic.experiments import inputs, melody

    cfg = _melody_cfg(0, "fomaml")
    corpus = synth.token_corpus()
    exp = experiments.build(cfg, corpus)
    algo = exp.algorithm("fomaml")
    meta = algo.init(exp.init_params())
    tasks = melody.episodes(cfg, corpus, "test", 2, 7, 2)
    res = {}
    for tag, mesh in (("off", None), ("on", devs.make_mesh(devices))):
        nll, aux = adapt_curves(algo.adapt, meta, tasks, 3, 4, cfg.seed, inputs.to_task, mesh)
        assert nll.shape == (7, 4)
        res[f"{tag}/nll"], res[f"{tag}/accuracy"] = nll, aux["accuracy"]
    # the oracle's fits, one job per (style, start), spread over the devices
    from metamusic import oracle

    params = meta["params"]
    starts = {"a": lambda fit, key: params, "b": lambda fit, key: jax.tree.map(lambda x: x * 0.9, params)}
    for tag, n in (("off", 0), ("on", devices)):
        c = cfg.copy_and_resolve_references()
        c.sharding.devices = n
        c.baselines.oracle_lrs = (1e-3, 3e-3)
        fitted, info = oracle.fit_oracles(experiments.build(c, corpus), starts, corpus=corpus)
        for k, p in fitted.items():
            res.update({f"{tag}/oracle{k}" + name: v for name, v in _flat(p).items()})
        res[f"{tag}/members"] = np.array([[m["held_nll"] for m in i["members"].values()] for i in info.values()])
    np.savez(out, **res)


if __name__ == "__main__":
    mode, out, devices = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if len(sys.argv) > 4:
        port, pid, nproc = (int(a) for a in sys.argv[4:7])
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=nproc, process_id=pid)
    {"loops": loops, "steps": steps, "gan": gan_steps, "loop": loop, "eval": eval_curves}[mode](out, devices)
