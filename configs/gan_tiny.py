"""A short variant of configs/gan.py for tests and smoke runs (tiny networks, few steps; its --mode=all still compiles
every phase, so it takes minutes, not seconds)."""

from configs import gan


def get_config():
    c = gan.get_config()
    c.steps = 2
    c.baselines.joint_steps = 2
    c.baselines.mle_steps = 2
    c.log_every = 1
    c.eval_every = 0
    c.checkpoint_every = 1
    c.progress = False
    c.model.generator.embed_dim = 8
    c.model.generator.hidden = 16
    c.model.generator.z_dim = 4
    c.model.generator.context_dim = 4
    c.model.support_encoder.dim = 8
    c.model.support_encoder.layers = 1
    c.model.critic.dim = 8
    c.model.critic.layers = 2
    c.gan.prefix = 4
    c.gan.critic_pretrain = 1
    c.data.min_tunes = 4
    c.data.shots = 2
    c.data.queries = 2
    c.data.length = 16
    c.meta.algorithm = "reptile,fomaml,amortized"  # the three meta-GAN variants
    c.gan.init = "mle"  # the GAN's own tiny LSTM (tests of gan.init=melody train a tiny melody run first)
    c.meta.inner_steps = 2
    c.meta.batch = 2
    c.eval.shots = (2,)
    c.eval.steps = 2
    c.eval.samples = 3
    c.eval.temperatures = (0.8, 1.0)
    c.eval.two_sample_samples = 4
    c.eval.two_sample_steps = 5
    c.baselines.finetune_scales = (1.0, 0.1)
    c.baselines.tune_episodes = 2
    c.eval.val_tasks = 2
    c.eval.melody_workdir = ""
    c.eval.scorer = ""
    c.eval.distractors = 1
    c.generate.num = 2
    return c
