"""Default melody meta-learning run on music21's bundled corpus, sized to fit a 30-minute budget on a 2-core CPU
(docs/design_notes.md#default-run-time).

    python run_maml.py --config=configs/maml.py --workdir=runs/maml --mode=all
Override any field: --config.meta.algorithm=maml,reptile --config.meta.inner_steps=3
"""

import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "melody"  # the experiment family (metamusic.experiments): run_maml.py runs melody or sinusoid
    c.seed = 0  # seeds init, per-step keys and episode draws, evaluation episodes
    # outer (meta) steps per meta-learning algorithm; these from the longer-trained joint model below did better
    # than fewer from a shorter one (docs/design_notes.md#joint-and-meta-steps)
    c.steps = 1200
    c.log_every = 50  # steps between metric lines (metrics.jsonl, TensorBoard)
    c.eval_every = 400  # steps between meta-val evaluations (0: only at the end)
    c.checkpoint_every = 200  # steps between orbax checkpoints
    c.max_bad_streak = 20  # consecutive non-finite steps before the run stops
    c.progress = True  # tqdm progress bars

    c.sharding = ml_collections.ConfigDict()
    c.sharding.devices = 0  # split the meta-batch's tasks over devices: 0 off, N the first N, -1 all
    # on the CPU (with devices 0): split it into this many XLA devices, one thread each, and the tasks over
    # them (faster meta-steps: one XLA:CPU device uses one core; docs/design_notes.md#cpu-devices); a divisor of
    # meta.batch; 0 or 1 off; inert on an accelerator
    c.sharding.cpu_devices = 2

    c.model = ml_collections.ConfigDict()
    c.model.name = "lstm"  # "lstm", "transformer" or "incontext" (configs/incontext.py)
    # a learned context vector FiLM-conditioning the model's inputs, which CAVIA adapts (0: none)
    c.model.context_dim = 32
    # True: the context also FiLM-conditions the head's input (the last layer's outputs), not only the inputs
    c.model.context_output = False
    c.model.support_encoder = ml_collections.ConfigDict()  # amortized: support tunes -> the context vector
    c.model.support_encoder.dim = 64  # its convolution width
    c.model.support_encoder.layers = 3  # its convolutions
    c.model.lstm = ml_collections.ConfigDict()
    c.model.lstm.embed_dim = 64  # token embedding width
    c.model.lstm.hidden = 64  # LSTM width (MelodyRNN: 2 x 128; 1 x 64 fits the default run's time budget)
    c.model.lstm.layers = 1  # stacked LSTM layers
    # "fast" (models/recurrent.py: the Flax cell's parameters and outputs, a faster meta-step on CPU;
    # docs/design_notes.md#fast-lstm) or "flax" (nn.OptimizedLSTMCell); checkpoints load into either
    c.model.lstm.impl = "fast"
    c.model.transformer = ml_collections.ConfigDict()
    c.model.transformer.dim = 128  # model width
    c.model.transformer.layers = 2  # blocks
    c.model.transformer.heads = 4  # attention heads
    c.model.transformer.max_len = 512  # longest input (learned positions)
    # the in-context Transformer (models/incontext.py; meta.algorithm=incontext reads the support tunes as its prompt)
    c.model.incontext = ml_collections.ConfigDict()
    c.model.incontext.dim = 128
    c.model.incontext.layers = 3
    c.model.incontext.heads = 4
    c.model.incontext.max_len = 512  # longest window (learned positions within a window)
    c.model.incontext.max_prompt_windows = 40  # support windows in the prompt (K=10 whole tunes of 4 windows)

    c.data = ml_collections.ConfigDict()
    c.data.root = ""  # a user corpus ROOT/<style>/<files>; "" = music21's bundled corpus
    c.data.cache_dir = ""  # "" = $METAMUSIC_CACHE_DIR or ~/.cache/metamusic
    c.data.workers = 0  # ingest processes; 0 = one per core
    c.data.midi_backend = "symusic"  # MIDI reader: "symusic" (C++) or "note_seq"; the same tokens (docs/data.md)
    c.data.steps_per_quarter = 4  # time resolution of the tokens
    c.data.min_note = 48  # lowest pitch of the encoding
    c.data.max_note = 84  # one past the highest pitch (38 classes with 48)
    c.data.key_normalize = False  # transpose every tune to C major / A minor
    c.data.melody = "skyline"  # "skyline" (the top voice) or "marked" (a part or track named melody/soprano/voice..., if any)
    c.data.split_seed = 0  # seeds the style split and the support/query tune pools
    c.data.min_tunes = 40  # styles with fewer tunes are left out
    # near-duplicates (interval n-gram Jaccard at or above this; data/near_dups.py) removed within styles and
    # across splits; 0: off, the corpus as cache version 3 built it (a run saved before this field existed loads
    # with 0, the corpus it was trained on; docs/design_notes.md#near-duplicate-threshold)
    c.data.near_dup_threshold = 0.4
    # True: styles of one name in two collections (oneills/jig, ryans/jig) share a split (docs/data.md)
    c.data.group_same_names = False
    c.data.shots = 5  # K support tunes per training task
    c.data.queries = 5  # Q query tunes per task
    c.data.length = 64  # T tokens per window (16 beats at 4 steps per quarter)
    # windows per tune in training tasks: 1 = one random window of T tokens per tune; W > 1 = whole tunes,
    # each as W consecutive windows (up to W*(T-1)+1 tokens; longer tunes give a random span that long)
    c.data.tune_windows = 1
    c.data.transpose = 0  # random transposition augmentation, +- semitones (0: off)
    # the bar-position channel: every model reads each step's position in its bar and a downbeat flag
    # (from the time signatures; data/melody.py). False: tokens only, as runs before it.
    c.data.bar_position = True

    c.meta = ml_collections.ConfigDict()
    c.meta.algorithm = "fomaml,maml,cavia,amortized"  # comma list of: maml fomaml anil metasgd mamlpp cavia amortized reptile
    # where meta-training starts: "joint" (the trained joint model; beats it and fine-tuning,
    # docs/results_melody.md) or "random"
    c.meta.init = "joint"
    c.meta.inner_steps = 3  # inner SGD steps on the support set
    c.meta.inner_lr = 0.03  # inner SGD lr (initial value for metasgd and mamlpp); 0.03 beat 0.3 on meta-val from joint
    c.meta.batch = 8  # tasks per meta-batch
    c.meta.remat = False  # jax.checkpoint the inner steps (memory for compute)
    c.meta.task_map = "auto"  # tasks of a meta-batch: "vmap", "map" (one after another), "auto" (map where each task has its own weights)
    # Per-algorithm settings, the one place for them: meta.per_algorithm.<name>.<field>, where <field> is
    # `steps` (its own outer steps), `tune_windows` (windows per tune in its training tasks, as
    # data.tune_windows) or one of the algorithm's options (meta.registry.ALGORITHMS[name].options), e.g.
    # --config.meta.per_algorithm.cavia.steps=600. amortized trains on whole tunes (4 windows), as it is
    # evaluated, for longer (docs/results_melody.md). MAML++: the multi-step loss moves onto the last step
    # over msl_anneal_steps, first order for first_order_steps. CAVIA: context_lr, the inner SGD lr of the
    # context vector (its paper used 1.0).
    c.meta.per_algorithm = ml_collections.ConfigDict({
        "amortized": {"steps": 2400, "tune_windows": 4},
        "mamlpp": {"msl_anneal_steps": 500, "first_order_steps": 300},
        "cavia": {"context_lr": 1.0},
    })

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-3  # Adam meta learning rate
    c.optim.clip = 1.0  # global gradient-norm clip
    c.optim.schedule = "constant"  # "constant" or "cosine" (MAML++ always uses cosine)

    c.eval = ml_collections.ConfigDict()
    c.eval.shots = (1, 5, 10)  # K values evaluated
    c.eval.episodes = 300  # meta-test episodes per K (fixed seed; 300 whole-tune episodes cost what 600 windows did)
    c.eval.steps = 3  # inner steps evaluated for meta-learned methods (curve after each)
    c.eval.chunk = 100  # episodes per jitted evaluation call
    # windows per support and query tune in evaluation episodes (as data.tune_windows): 4 = whole tunes of up
    # to 253 tokens (most folk tunes; a longer one gives a random span that long); 1 = one window per tune
    c.eval.tune_windows = 4
    c.eval.val_tasks = 32  # meta-val tasks for the validation metric during training
    c.eval.root = ""  # a folder ROOT/<style>/<files>: --mode=eval scores every style there as meta-test instead
    c.eval.min_tunes = 10  # eval.root: a style needs this many tunes (after dropping tunes seen in training)
    # a trained run_relation.py workdir for style fidelity (skipped with one line where there is none); "" skips it
    c.eval.scorer = "runs/relation"
    c.eval.fidelity_shots = 5  # style fidelity: K support tunes (whole, as eval.tune_windows) each method adapts on
    c.eval.fidelity_draws = 4  # style fidelity: draws of support tunes per meta-test style (the paired unit)
    c.eval.samples = 8  # style fidelity: melodies sampled per meta-test style and method
    c.eval.listen = 2  # melodies per meta-test style and method logged to tb/eval as audio + piano roll (0: off)
    c.eval.distractors = 4  # style fidelity: other meta-test styles competing with the target
    c.eval.temperature = 1.0  # sampling temperature in the evaluation
    # methods that also get a "<method>+finetune" row: their adaptation, then SGD on every weight with the
    # lr and steps (baselines.finetune_lrs, finetune_steps) chosen on meta-val after that adaptation
    c.eval.finetune_after = ("amortized",)

    c.baselines = ml_collections.ConfigDict()  # metamusic.baselines: what meta-learning must beat
    # steps of the jointly trained model (all meta-train styles, no inner loop); its meta-val NLL flattens
    # before this count (docs/design_notes.md#joint-and-meta-steps)
    c.baselines.joint_steps = 6000
    c.baselines.joint_lr = 1e-3  # its Adam lr
    c.baselines.joint_batch_factor = 1  # it sees meta.batch * this tasks per step
    c.baselines.tune_episodes = 100  # meta-val episodes used to choose fine-tuning's and scratch's lr and steps
    c.baselines.finetune_lrs = (0.01, 0.03, 0.1)  # SGD lrs tried for fine-tuning the joint model
    c.baselines.finetune_steps = 5  # most fine-tuning steps (the best count is chosen on meta-val)
    c.baselines.scratch_lrs = (0.3, 1.0, 3.0)  # lrs tried for training from scratch on the support
    c.baselines.scratch_steps = 5  # most from-scratch SGD steps (the best count is chosen on meta-val)
    # True: fine-tuning (and every "+finetune" row, and from-scratch training) is tuned on meta-val at each K
    # of eval.shots, and a row adapting to K tunes uses the choice of the nearest K; False: one choice at the
    # middle K serves every K (the steps that suit five tunes overfit one)
    c.baselines.tune_per_k = True
    # The style oracle (the ceiling; metamusic/oracle.py): per meta-test style, the best of a family of
    # whole-support-pool adaptations, chosen on held-out support-pool tunes (never the query pool): each start
    # of oracle_from that the run trained (joint as it is; amortized or CAVIA adapted on the whole pool), then
    # Adam at each lr of oracle_lrs with held-out checks (fine early, coarse later); the best check wins.
    c.baselines.oracle_from = ("joint", "amortized", "cavia")
    c.baselines.oracle_lrs = (3e-4, 1e-3)  # Adam lrs tried from each start
    c.baselines.oracle_lr = 1e-3  # the one lr when oracle_lrs is empty (runs made before the grid)
    c.baselines.oracle_steps = 400  # most Adam steps per start and lr
    c.baselines.oracle_check_every = 25  # steps between held-out checks (the best check is kept) ...
    c.baselines.oracle_fine_every = 5  # ... but every oracle_fine_every steps up to step oracle_fine_until
    c.baselines.oracle_fine_until = 50
    c.baselines.oracle_patience = 6  # stop after this many checks without a new best (0: never)
    c.baselines.oracle_batch = 32  # windows per step
    c.baselines.oracle_holdout = 0.2  # share of the style's support-pool tunes held out for the early stop

    c.generate = ml_collections.ConfigDict()
    c.generate.num = 4  # melodies per call
    c.generate.length = 128  # tokens per melody (32 beats)
    c.generate.temperature = 1.0  # softmax temperature
    c.generate.seed = 0  # seeds the support draw and sampling
    c.generate.prime_steps = 0  # >0: start from this many tokens of a support tune's opening
    return c
