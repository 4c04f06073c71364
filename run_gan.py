"""Meta-train, evaluate and sample meta-learned GANs (FIGR/Reptile, DAWSON/first-order MAML) on per-style tasks.

    python run_gan.py --config=configs/gan.py --workdir=runs/gan --mode=all
    python run_gan.py --config=configs/gan.py --workdir=runs/gan --mode=eval
    python run_gan.py --config=configs/gan.py --workdir=runs/gan --mode=generate \
        --style=oneills/jig --shots=5 --out=samples/ --method=reptile
"""

import os
import sys

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # so configs can import configs.maml

config_flags.DEFINE_config_file("config", "configs/gan.py", "ml_collections config file")
flags.DEFINE_string("workdir", "runs/gan", "where checkpoints, metrics and results go")
flags.DEFINE_enum("mode", "train", ["train", "eval", "generate", "all"], "all = train then eval")
flags.DEFINE_string("style", None, "generate: a catalog style name or a folder of music files")
flags.DEFINE_integer("shots", 5, "generate: K support tunes to adapt on")
flags.DEFINE_string("out", "samples", "generate: output folder for .mid and .png files")
flags.DEFINE_string("method", None, "generate: reptile, fomaml or pretrain (default: the first in the config)")
FLAGS = flags.FLAGS


def main(_):
    from metamusic import cli

    return cli.run_gan(FLAGS.config, FLAGS.workdir, FLAGS.mode, style=FLAGS.style, shots=FLAGS.shots,
                       out=FLAGS.out, method=FLAGS.method)


if __name__ == "__main__":
    app.run(main)
