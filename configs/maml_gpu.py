"""A larger melody meta-learning run for one accelerator (measurements: docs/design_notes.md#gpu-config).

    python run_maml.py --config=configs/maml_gpu.py --workdir=runs/maml_gpu --mode=all
Same corpus, split and evaluation protocol as configs/maml.py (so the rows compare), with a
2 x 256 LSTM (the fast implementation), whole-tune tasks of up to 4 windows per tune, more
meta-steps and joint steps, and every conditioning method.
"""

from configs import maml


def get_config():
    c = maml.get_config()
    c.steps = 6000
    c.eval_every = 1000
    c.checkpoint_every = 1000
    c.model.lstm.embed_dim = 128
    c.model.lstm.hidden = 256
    c.model.lstm.layers = 2
    c.model.lstm.impl = "fast"
    c.model.context_dim = 64
    c.model.support_encoder.dim = 128
    c.data.tune_windows = 4  # whole tunes (up to 253 tokens) in training tasks
    c.eval.tune_windows = 4  # and in every evaluation episode
    c.meta.algorithm = "fomaml,maml,cavia,amortized"
    c.meta.batch = 16
    c.meta.task_map = "vmap"  # on an accelerator the tasks batch into every op; "map" is the CPU choice
    c.baselines.joint_steps = 20000
    c.baselines.oracle_steps = 2000
    c.baselines.oracle_check_every = 50
    return c
