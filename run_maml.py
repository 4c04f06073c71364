"""Meta-train, evaluate and sample melody models (MAML family) on per-style tasks.

    python run_maml.py --config=configs/maml.py --workdir=runs/maml --mode=all
    python run_maml.py --config=configs/maml.py --workdir=runs/maml --mode=eval
    python run_maml.py --config=configs/maml.py --workdir=runs/maml --mode=generate \
        --style=oneills/jig --shots=5 --out=samples/ [--method=fomaml|joint|finetune]
    python run_maml.py --config=configs/sinusoid.py --workdir=runs/sinusoid --mode=all
Override any config field: --config.meta.algorithm=maml,reptile --config.meta.inner_steps=3
"""

import os
import sys

if __name__ == "__main__":
    from metamusic import cli

    sys.exit(cli.main(os.path.basename(__file__), sys.argv[1:]))
