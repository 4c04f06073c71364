"""Finn et al. (2017) sinusoid regression, Section 5.1: the MAML correctness check.

    python run_maml.py --config=configs/sinusoid.py --workdir=runs/sinusoid --mode=all
"""

import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "sinusoid"  # the experiment family (metamusic.experiments)
    c.seed = 0  # seeds init, task draws (per step) and evaluation tasks
    c.steps = 20000  # outer steps (the paper ran 70k; the figures are reached well before)
    c.log_every = 500  # steps between metric lines
    c.checkpoint_every = 5000  # steps between checkpoints
    c.progress = True  # tqdm progress bar

    c.model = ml_collections.ConfigDict()
    c.model.hidden = (40, 40)  # ReLU MLP widths, as in the paper

    c.data = ml_collections.ConfigDict()
    c.data.shots = 10  # K support (and query) points per task

    c.meta = ml_collections.ConfigDict()
    c.meta.algorithm = "maml"  # comma list of: maml fomaml anil metasgd mamlpp reptile
    c.meta.inner_steps = 1  # inner SGD steps during meta-training (the paper: 1)
    c.meta.inner_lr = 0.01  # inner SGD learning rate (the paper: 0.01)
    c.meta.batch = 25  # tasks per meta-batch (the paper: 25)

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-3  # Adam meta learning rate (the paper: 1e-3)

    c.eval = ml_collections.ConfigDict()
    c.eval.steps = 10  # inner steps evaluated after training
    c.eval.episodes = 600  # fresh tasks in the evaluation

    c.baselines = ml_collections.ConfigDict()  # metamusic.baselines
    c.baselines.joint_steps = 20000  # steps of the joint model (the paper's "pretrained" baseline)
    c.baselines.finetune_lrs = (0.001, 0.003, 0.01, 0.02)  # SGD lrs tried for fine-tuning it (best on validation tasks)
    return c
