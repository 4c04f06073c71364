"""Meta-train, evaluate and sample melody models (MAML family) on per-style tasks.

    python run_maml.py --config=configs/maml.py --workdir=runs/maml --mode=all
    python run_maml.py --config=configs/maml.py --workdir=runs/maml --mode=eval
    python run_maml.py --config=configs/maml.py --workdir=runs/maml --mode=generate \
        --style=oneills/jig --shots=5 --out=samples/
    python run_maml.py --config=configs/sinusoid.py --workdir=runs/sinusoid --mode=all
"""

import os
import sys

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # so configs can import configs.maml

config_flags.DEFINE_config_file("config", "configs/maml.py", "ml_collections config file")
flags.DEFINE_string("workdir", "runs/maml", "where checkpoints, metrics and results go")
flags.DEFINE_enum("mode", "train", ["train", "eval", "generate", "all"], "all = train then eval")
flags.DEFINE_string("style", None, "generate: a catalog style name or a folder of music files")
flags.DEFINE_integer("shots", 5, "generate: K support tunes to adapt on")
flags.DEFINE_string("out", "samples", "generate: output folder for .mid and .png files")
flags.DEFINE_string("method", None, "generate: which trained algorithm (default: the first in the config)")
FLAGS = flags.FLAGS


def main(_):
    from metamusic import cli

    return cli.run_maml(FLAGS.config, FLAGS.workdir, FLAGS.mode, style=FLAGS.style, shots=FLAGS.shots,
                        out=FLAGS.out, method=FLAGS.method)


if __name__ == "__main__":
    app.run(main)
