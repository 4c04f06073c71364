"""A short variant of configs/maml.py for tests and smoke runs (tiny model, few steps)."""

import ml_collections

from configs import maml


def get_config():
    c = maml.get_config()
    c.steps = 6
    c.baselines.joint_steps = 6
    c.log_every = 2
    c.eval_every = 0
    c.checkpoint_every = 2
    c.progress = False
    c.model.lstm.embed_dim = 8
    c.model.lstm.hidden = 16
    c.model.transformer.dim = 16
    c.model.transformer.layers = 1
    c.model.transformer.heads = 2
    c.model.incontext.dim = 16
    c.model.incontext.layers = 1
    c.model.incontext.heads = 2
    c.data.min_tunes = 4
    c.data.shots = 2
    c.data.queries = 2
    c.data.length = 16
    c.meta.algorithm = "fomaml"
    c.model.context_dim = 0  # (no context: the tiny runs keep their numbers)
    c.meta.inner_steps = 2
    # no per-algorithm steps or windows (every method trains `steps`); the algorithms' options stay
    c.meta.per_algorithm = ml_collections.ConfigDict(
        {k: v for k, v in c.meta.per_algorithm.items() if k != "amortized"})
    c.meta.batch = 2
    c.eval.shots = (1, 2)
    c.eval.episodes = 8
    c.eval.chunk = 4
    c.eval.val_tasks = 2
    c.baselines.tune_episodes = 4
    c.baselines.finetune_lrs = (0.1, 0.3)
    c.baselines.finetune_steps = 2
    c.baselines.scratch_lrs = (1.0,)
    c.baselines.scratch_steps = 2
    c.baselines.oracle_steps = 4
    c.baselines.oracle_check_every = 2
    c.baselines.oracle_fine_every = 0
    c.baselines.oracle_batch = 4
    c.eval.scorer = ""  # no style fidelity in smoke runs
    c.eval.listen = 0  # no TensorBoard audio in smoke runs (tests/train/test_melody_run.py turns it on)
    c.generate.num = 2
    c.generate.length = 24
    return c
