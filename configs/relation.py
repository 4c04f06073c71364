"""Few-shot music-style classification: relation network, prototypical net, R2D2 ridge head, pretrained encoder (RFS).

    python run_relation.py --config=configs/relation.py --workdir=runs/relation --mode=all
"""

import ml_collections

from configs import maml


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "classify"  # the experiment family (metamusic.experiments)
    c.seed = 0  # seeds init, per-step keys and episode draws, evaluation episodes
    c.steps = 400  # training steps per method (whole tunes; time per method: docs/design_notes.md#relation-steps)
    c.log_every = 100  # steps between metric lines
    c.eval_every = 200  # steps between meta-val accuracy checks
    c.checkpoint_every = 200  # steps between orbax checkpoints
    c.max_bad_streak = 20  # consecutive non-finite steps before the run stops
    c.progress = True  # tqdm progress bars

    c.data = maml.get_config().data  # the same corpus, encoding and split settings as the MAML runs
    c.data.bar_position = True  # every encoder reads each step's position in its bar (meter)
    c.data.ways = 5  # N styles per episode
    c.data.train_ways = 0  # N of training episodes (0: data.ways); evaluation keeps data.ways
    c.data.shots = 5  # K example tunes per style in training episodes
    c.data.queries = 5  # Q query tunes per style
    c.data.length = 256  # T: each example is a whole tune up to T tokens (a longer one: a random span of T)
    c.data.transpose = 2  # training episodes: each tune shifted by a random -2..2 semitones

    c.sharding = ml_collections.ConfigDict()
    c.sharding.devices = 0  # split the batch's episodes over devices: 0 off, N the first N, -1 all

    c.model = ml_collections.ConfigDict()
    c.model.encoder = "conv"  # "conv" (1-D convolutions) or "transformer"
    c.model.inputs = "notes"  # "notes" (token, interval, onset), "music" (+ scale degree, inter-onset interval,
    # onset position) or "rhythm" (music + inter-onset ratio and beat pattern)
    c.model.pool = "output"  # "output" or "output+inputs": the mean input embedding beside the output's (2 * dim)
    c.model.conv = ml_collections.ConfigDict({"dim": 64, "layers": 4, "kernel": 5})  # conv encoder fields
    c.model.transformer = ml_collections.ConfigDict({"dim": 64, "layers": 2, "heads": 4})  # transformer fields
    c.model.relation_hidden = 64  # relation module width
    c.model.relation_layers = 3  # hidden layers of the relation module (the paper: 2)
    c.model.pairs = "rich"  # relation input: "concat" (the paper) or "rich" (+ |c - q| and c * q)
    c.model.relation_prior = "none"  # "none" (the paper) or "euclidean": the module corrects a learned distance
    c.model.aggregate = "mean"  # relation network's class feature over shots: "sum" (the paper) or "mean"
    c.model.pretrain_classes = 64  # outputs of the pretraining layer (>= the number of meta-train styles)

    c.meta = ml_collections.ConfigDict()
    c.meta.algorithm = "protonet,r2d2,relation,pretrain"  # comma list of heads (metamusic.meta.episodic.HEADS)
    c.meta.init = "random"  # or a head of meta.algorithm (e.g. pretrain, contrastive, masked, protonet): its encoder
    # starts the other heads (a label-free head such as pretrain always trains its own)
    c.meta.batch = 4  # episodes per training step
    c.meta.freeze_encoder = False  # True: heads started from meta.init keep its encoder fixed, training their own layers
    # weight of an auxiliary loss of every head: a linear layer on the encoder's features predicts each window's
    # standardised hand-made features (data.features.tune_features); 0: off
    c.meta.feature_loss = 0.0

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-3  # Adam, as in the paper's code
    c.optim.clip = 0.5  # gradient-norm clip, as in the paper's code

    c.eval = ml_collections.ConfigDict()
    c.eval.shots = (1, 5, 10)  # K values evaluated (N = data.ways)
    c.eval.episodes = 600  # meta-test episodes per K (fixed seed)
    # tokens per tune in evaluation episodes (0: data.length, as trained; the Transformer reads at most 512): most
    # tunes whole, where training reads windows of data.length (docs/results_classification.md#whole-tunes-at-evaluation)
    c.eval.length = 1024
    c.eval.chunk = 25  # episodes per jitted call
    c.eval.val_tasks = 100  # fixed meta-val episodes for the validation accuracy (and the scorer's choice)
    # fixed meta-val episodes on which each feature regression's L2 (and the best regression rows) are chosen, 0:
    # eval.val_tasks; regressions are cheap, and on a small meta-val the L2s differ by less than its noise
    c.eval.tune_episodes = 500
    c.eval.features_l2 = 0.0  # L2 penalty of the hand-made-features logistic regression (0: chosen on meta-val)
    c.eval.finetune_episodes = 0  # > 0: also fine-tune the pretrained encoder per episode (pretrain+finetune) on this many
    # Adam lr of those rows' fine-tuning (10 steps on the support set); chosen on meta-val
    # (docs/results_classification.md#fine-tuning-on-the-support-set)
    c.eval.finetune_lr = 1e-4
    c.eval.root = ""  # a folder ROOT/<style>/<files>: --mode=eval scores every style there as meta-test instead
    c.eval.min_tunes = 10  # eval.root: a style needs this many tunes (after dropping tunes seen in training)
    return c
