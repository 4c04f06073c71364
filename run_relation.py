"""Few-shot music-style classification with relation networks and prototypical networks.

    python run_relation.py --config=configs/relation.py --workdir=runs/relation --mode=all
    python run_relation.py --workdir=runs/relation --mode=classify --support=DIR --query=FILE_OR_DIR
      (DIR holds one subfolder per style with K example files)
"""

import os
import sys

if __name__ == "__main__":
    from metamusic import cli

    sys.exit(cli.main(os.path.basename(__file__), sys.argv[1:]))
