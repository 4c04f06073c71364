"""In-context meta-learning (issue 32): a Transformer melody model whose prompt is the K support tunes,
meta-trained on episodes from its joint model (the same Transformer without a prompt: K=0).

    python run_maml.py --config=configs/incontext.py --workdir=runs/incontext --mode=all

Everything else (corpus, split, episodes, evaluation) is configs/maml.py's, so its meta-test episodes are
the default run's draws and its rows read beside that run's table.
"""

import ml_collections

from configs import maml


def get_config():
    c = maml.get_config()
    c.model.name = "incontext"
    c.model.context_dim = 0  # (the prompt conditions it; no context vector)
    c.model.incontext.dim = 64  # (small, for the CPU budget of the default melody run)
    c.model.incontext.layers = 2
    c.meta.algorithm = "incontext"
    # trained on whole tunes, as it is evaluated: a prompt of K=5 tunes of 4 windows
    c.meta.per_algorithm = ml_collections.ConfigDict({"incontext": {"steps": 600, "tune_windows": 4}})
    c.baselines.joint_steps = 3000
    c.eval.chunk = 10  # episodes per jitted evaluation call (a K=10 prompt is 40 windows per episode)
    c.eval.finetune_after = ("incontext",)
    # the ceiling of this run starts from its joint model only (the default run's ceiling is the one reported)
    c.baselines.oracle_from = ("joint",)
    return c
