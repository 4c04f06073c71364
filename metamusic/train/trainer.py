"""One way to train any method of any experiment: build its state, shard it, run the loop.

The method trains into workdir/<name> (`baselines.run_dir`); a killed run resumes
there from its latest checkpoint.
"""

from __future__ import annotations

from metamusic import baselines
from metamusic.experiments.base import Experiment, start_params
from metamusic.experiments.methods import method
from metamusic.meta.outer import init_state, make_outer_step
from metamusic.train import sharding
from metamusic.train.loop import LoopConfig, run


def train(exp: Experiment, workdir: str, name: str, stats: dict | None = None):
    """Trains method `name` of `exp` (a meta-learning algorithm or a trained baseline); returns the state.
    stats: receives "start", the step training resumed from."""
    m = method(exp, name)
    state = init_state(m.algorithm, m.optimizer, start_params(exp, workdir, name))
    loop = LoopConfig.from_config(exp.cfg, m.steps)
    mesh = sharding.mesh_from_config(exp.cfg)
    step_fn, sample, state = sharding.distribute(make_outer_step(m.algorithm, m.optimizer, m.task_map, mesh),
                                                 m.sampler, state, mesh)
    return run(baselines.run_dir(workdir, name), state, step_fn, sample, loop, phase_fn=m.algorithm.phase,
               eval_fn=m.validation, name=m.label, stats=stats, optional=exp.optional)
