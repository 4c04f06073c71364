"""Few-shot music-style classification with relation networks and prototypical networks.

    python run_relation.py --config=configs/relation.py --workdir=runs/relation --mode=all
    python run_relation.py --workdir=runs/relation --mode=classify --support=DIR --query=FILE_OR_DIR
      (DIR holds one subfolder per style with K example files)
"""

import os
import sys

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

config_flags.DEFINE_config_file("config", "configs/relation.py", "ml_collections config file")
flags.DEFINE_string("workdir", "runs/relation", "where checkpoints, metrics and results go")
flags.DEFINE_enum("mode", "train", ["train", "eval", "classify", "all"], "all = train then eval")
flags.DEFINE_string("support", None, "classify: folder with one subfolder of example files per style")
flags.DEFINE_multi_string("query", [], "classify: query files or folders")
FLAGS = flags.FLAGS


def main(_):
    from metamusic import cli

    return cli.run_relation(FLAGS.config, FLAGS.workdir, FLAGS.mode, support=FLAGS.support, query=FLAGS.query)


if __name__ == "__main__":
    app.run(main)
