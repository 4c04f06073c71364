"""Few-shot music-style classification: relation network and prototypical baseline.

    python run_relation.py --config=configs/relation.py --workdir=runs/relation --mode=all
"""

import ml_collections

from configs import maml


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "classify"  # the experiment family (metamusic.experiments)
    c.seed = 0  # seeds init, per-step keys and episode draws, evaluation episodes
    c.steps = 2000  # training steps per method
    c.log_every = 100  # steps between metric lines
    c.eval_every = 500  # steps between meta-val accuracy checks
    c.checkpoint_every = 500  # steps between orbax checkpoints
    c.max_bad_streak = 20  # consecutive non-finite steps before the run stops
    c.progress = True  # tqdm progress bars

    c.data = maml.get_config().data  # the same corpus, encoding and split settings as the MAML runs
    c.data.bar_position = False  # the classifiers do not read the bar-position channel yet
    c.data.ways = 5  # N styles per episode
    c.data.shots = 5  # K example tunes per style in training episodes
    c.data.queries = 5  # Q query tunes per style
    c.data.length = 64  # T tokens per window

    c.sharding = ml_collections.ConfigDict()
    c.sharding.devices = 0  # split the batch's episodes over devices: 0 off, N the first N, -1 all

    c.model = ml_collections.ConfigDict()
    c.model.encoder = "conv"  # "conv" (1-D convolutions) or "transformer"
    c.model.conv = ml_collections.ConfigDict({"dim": 64, "layers": 4, "kernel": 5})  # conv encoder fields
    c.model.transformer = ml_collections.ConfigDict({"dim": 64, "layers": 2, "heads": 4})  # transformer fields
    c.model.relation_hidden = 64  # relation module width
    c.model.aggregate = "sum"  # relation network's class feature over shots: "sum" (the paper) or "mean"

    c.meta = ml_collections.ConfigDict()
    c.meta.algorithm = "relation,protonet"  # comma list of metric heads (metamusic.meta.episodic.HEADS)
    c.meta.batch = 4  # episodes per training step

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-3  # Adam, as in the paper's code
    c.optim.clip = 0.5  # gradient-norm clip, as in the paper's code

    c.eval = ml_collections.ConfigDict()
    c.eval.shots = (1, 5)  # K values evaluated (N = data.ways)
    c.eval.episodes = 600  # meta-test episodes per K (fixed seed)
    c.eval.chunk = 100  # episodes per jitted call
    c.eval.val_tasks = 100  # fixed meta-val episodes for the validation accuracy
    return c
