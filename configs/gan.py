"""Meta-learned GAN for few-shot melody generation (FIGR/Reptile and DAWSON/first-order MAML).

    python run_gan.py --config=configs/gan.py --workdir=runs/gan --mode=all
    python run_gan.py --config=configs/gan.py --workdir=runs/gan --mode=generate --style=oneills/jig --shots=5
Override any field: --config.gan.loss=wgan-gp --config.meta.algorithm=reptile
"""

import ml_collections

from configs import maml


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "gan"  # the experiment family (metamusic.experiments)
    c.seed = 0  # seeds init, per-step keys and episode draws, evaluation draws
    c.steps = 500  # outer (meta) steps per meta-learning algorithm
    c.log_every = 50  # steps between metric lines (metrics.jsonl, TensorBoard)
    c.eval_every = 100  # steps between meta-val checks (0: only at the end)
    c.checkpoint_every = 100  # steps between orbax checkpoints
    c.max_bad_streak = 20  # consecutive non-finite steps before the run stops
    c.progress = True  # tqdm progress bars

    c.sharding = ml_collections.ConfigDict()
    c.sharding.devices = 0  # split the meta-batch's tasks over devices: 0 off, N the first N, -1 all

    c.data = maml.get_config().data  # the same corpus, encoding, split and window length as the MAML runs
    c.data.bar_position = False  # (the GAN's own LSTM reads no bar position; under gan.init=melody the melody LM reads its run's)
    c.data.shots = 5  # K support tunes per training task
    c.data.queries = 5  # Q query tunes per task (the DAWSON-style outer loss; Reptile trains on both)

    c.model = ml_collections.ConfigDict()
    c.model.generator = ml_collections.ConfigDict()  # the GAN's own LSTM (gan.init=mle or random)
    c.model.generator.embed_dim = 32  # token embedding width
    c.model.generator.hidden = 64  # LSTM width
    c.model.generator.z_dim = 32  # noise vector (sets the LSTM's initial state)
    c.model.generator.context_dim = 16  # style context beside z (set from the support set by `amortized`; 0 = none)
    c.model.critic = ml_collections.ConfigDict()
    c.model.critic.dim = 64  # conv channels
    c.model.critic.layers = 4  # conv layers
    c.model.critic.kernel = 5  # conv width (steps)
    c.model.critic.dilated = True  # layer i dilated 2**i: a receptive field of 1 + (kernel-1)(2**layers-1) steps (False: 1 + (kernel-1) layers)
    c.model.critic.bar_position = True  # the critic also reads each step's bar position (fakes carry their real window's)
    c.model.support_encoder = ml_collections.ConfigDict()  # `amortized`: K support windows -> the style context
    c.model.support_encoder.dim = 64
    c.model.support_encoder.layers = 3

    c.gan = ml_collections.ConfigDict()
    c.gan.loss = "ns"  # "ns" (non-saturating), "hinge" or "wgan-gp"
    # "melody": the generator is the melody LM of eval.melody_workdir (same tokens, bar position), started from
    # its joint model (the amortized meta-GAN from its amortized model and encoder); "mle": the GAN's own LSTM
    # (model.generator) after the `mle` baseline; "random": that LSTM from scratch
    c.gan.init = "melody"
    c.gan.tau = 1.0  # Gumbel-softmax temperature of the straight-through relaxation
    # stabilizers
    c.gan.adv_weight = 1.0  # the critic's term in the generator's loss; 0 = likelihood alone (an ablation)
    c.gan.mle_weight = 1.0  # teacher-forced likelihood term on the generator (SeqGAN-style); 0 = pure GAN
    c.gan.r1_weight = 0.01  # R1 penalty on real data (ns, hinge); at 1.0 it held the critic at chance (docs/results_gan.md)
    c.gan.r1_simplex = True  # R1 on the input gradient's part within the simplex (one-hot inputs move only there)
    c.gan.prefix = 16  # real melody steps the generator reads teacher-forced before it free-runs (0: fakes are tune openings)
    c.gan.estimator = "gumbel"  # "gumbel" (straight-through samples) or "reinforce" (score function, batch-mean baseline; gan.init=melody)
    c.gan.critic_steps = 2  # critic steps per generator step (the generator's gradients are averaged over them)
    c.gan.critic_pretrain = 50  # first steps of each GAN method with the generator held still while the critic learns
    c.gan.gp_weight = 10.0  # gradient penalty (wgan-gp)
    c.gan.drift = 1e-3  # drift penalty on real scores (wgan-gp)

    c.meta = ml_collections.ConfigDict()
    c.meta.algorithm = "reptile,fomaml,amortized"  # comma list: reptile (FIGR), fomaml (DAWSON-style), maml, amortized (style-conditioned)
    c.meta.inner_steps = 3  # GAN SGD steps on the support set (both players at once, unless the two below are set)
    c.meta.d_inner_steps = 0  # the critic moves on the first this-many of them (0: all)
    c.meta.g_inner_steps = 0  # the generator moves on the last this-many of them (0: all)
    c.meta.g_lr = 0.1  # inner SGD lr of the generator (0.3 diverged; docs/design_notes.md#gan-inner-lrs)
    c.meta.d_lr = 0.01  # inner SGD lr of the critic (0.05 blew up in some tasks' inner loops)
    c.meta.batch = 8  # tasks per meta-batch
    c.meta.remat = False  # jax.checkpoint the inner steps

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-3  # the generator's Adam outer lr
    c.optim.b1 = 0.5  # Adam beta1 of both players (0.5 is the usual GAN choice, Radford et al. 2016)
    c.optim.clip = 1.0  # the generator's global gradient-norm clip
    c.optim.critic_lr = 1e-3  # the critic's own Adam lr (0: one Adam and one clip over both players, as before)
    c.optim.critic_clip = 10.0  # the critic's own gradient-norm clip

    c.eval = ml_collections.ConfigDict()
    c.eval.shots = (5, 10)  # K values evaluated
    c.eval.steps = 3  # inner steps when adapting on the K tunes (meta-GANs and the fine-tuned joint GAN)
    c.eval.samples = 16  # melodies generated per style and method; also the held-out real tunes per style
    c.eval.val_tasks = 16  # meta-val tasks for the validation metrics during training
    c.eval.melody_workdir = "runs/maml"  # a run_maml.py workdir to compare with; "" skips those rows
    c.eval.scorer = "runs/relation"  # a run_relation.py workdir for style fidelity; "" skips it
    c.eval.distractors = 4  # other meta-test styles competing with the target in style fidelity
    c.eval.temperature = 1.0  # sampling temperature of the tables' rows (every generator)
    # the quality-diversity sweep (every generator); () = off. It reaches down to 0.6 because at 0.8 every GAN
    # with its own LSTM (gan.init=mle) was still more varied than real tunes (docs/design_notes.md#temperature-sweep)
    c.eval.temperatures = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25)
    # the classifier two-sample test (metamusic/eval/two_sample.py): up to this many held-out tune openings per
    # style against as many of each generator's melodies (0: off), and the Adam steps of its fresh critics
    c.eval.two_sample_samples = 48
    c.eval.two_sample_steps = 300

    c.baselines = ml_collections.ConfigDict()  # metamusic.baselines
    c.baselines.joint_steps = 1500  # steps of the jointly trained GAN (about FOMAML's wall time)
    c.baselines.joint_lr = 1e-3  # its Adam lr
    c.baselines.mle_steps = 1500  # Adam steps of the MLE generator (teacher-forced NLL, meta-train styles)
    c.baselines.mle_lr = 3e-3  # its Adam lr
    c.baselines.joint_batch_factor = 1  # it sees meta.batch * this tasks per step
    c.baselines.finetune_scales = (1.0, 0.3, 0.1, 0.03)  # fine-tuning the joint GAN: inner lrs times these
    c.baselines.tune_episodes = 16  # meta-val tasks for choosing the scale (lowest generator NLL)

    c.generate = ml_collections.ConfigDict()
    c.generate.num = 4  # melodies per call
    c.generate.seed = 0  # seeds the support draw and sampling
    return c
