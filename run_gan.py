"""Meta-train, evaluate and sample meta-learned GANs (FIGR/Reptile, DAWSON/first-order MAML) on per-style tasks.

    python run_gan.py --config=configs/gan.py --workdir=runs/gan --mode=all
    python run_gan.py --config=configs/gan.py --workdir=runs/gan --mode=eval
    python run_gan.py --config=configs/gan.py --workdir=runs/gan --mode=generate \
        --style=oneills/jig --shots=5 --out=samples/ [--method=reptile|joint|finetune]
"""

import os
import sys

if __name__ == "__main__":
    from metamusic import cli

    sys.exit(cli.main(os.path.basename(__file__), sys.argv[1:]))
