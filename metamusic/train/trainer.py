"""One way to train any method of any experiment: build its state, shard it, run the loop.

The method trains into workdir/<name> (`baselines.run_dir`); a killed run resumes
there from its latest checkpoint.
"""

from __future__ import annotations

from metamusic import baselines
from metamusic.experiments.base import Experiment, start_params
from metamusic.meta.outer import init_state, make_outer_step
from metamusic.meta.registry import task_map_for
from metamusic.train import sharding
from metamusic.train.loop import LoopConfig, run


def train(exp: Experiment, workdir: str, name: str):
    """Trains method `name` of `exp` (a meta-learning algorithm or a trained baseline); returns the state."""
    algo = exp.algorithm(name)
    tx = exp.optimizer(name)
    state = init_state(algo, tx, start_params(exp, workdir, name))
    loop = LoopConfig.from_config(exp.cfg, exp.train_steps(name))
    task_map = task_map_for(name, exp.cfg.meta.get("task_map", "vmap") if "meta" in exp.cfg else "vmap")
    mesh = sharding.mesh_from_config(exp.cfg)
    step_fn, sample, state = sharding.distribute(make_outer_step(algo, tx, task_map, mesh), exp.train_sampler(name),
                                                 state, mesh)
    return run(baselines.run_dir(workdir, name), state, step_fn, sample, loop, phase_fn=algo.phase,
               eval_fn=exp.val_eval(name, algo), name=exp.label(name))
