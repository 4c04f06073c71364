"""What the run_*.py entry scripts call: mode dispatch, friendly errors, result printing."""

from __future__ import annotations

import json
import logging
import os
import sys

from metamusic.errors import MetamusicError


def run_maml(cfg, workdir: str, mode: str, *, style=None, shots: int = 5, out: str = "samples", method=None) -> int:
    logging.getLogger("absl").setLevel(logging.WARNING)
    try:
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(cfg.to_json_best_effort(indent=1))
        if cfg.task == "sinusoid":
            return _sinusoid(cfg, workdir, mode)
        if cfg.task != "melody":
            raise MetamusicError(f"task={cfg.task!r} is not allowed; choose one of ['melody', 'sinusoid']")
        from metamusic.train import melody as mel

        corpus = mel.load_data(cfg)
        if mode in ("train", "all"):
            for name in mel.algorithms(cfg) + ["pretrain"]:
                mel.train(cfg, workdir, name, corpus)
        if mode in ("eval", "all"):
            from metamusic.eval import fewshot

            fewshot.evaluate(cfg, workdir, corpus)
            print(open(os.path.join(workdir, "eval.md")).read())
        if mode == "generate":
            if not style:
                raise MetamusicError("--mode=generate needs --style=NAME (a catalog style) or a folder of files")
            from metamusic.generate import generate

            for p in generate(cfg, workdir, style=style, shots=shots, out=out, method=method, corpus=corpus):
                print(p)
    except MetamusicError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _sinusoid(cfg, workdir: str, mode: str) -> int:
    from metamusic.train import sinusoid

    if mode in ("train", "all"):
        sinusoid.train(cfg, workdir)
        sinusoid.train(cfg, workdir, "pretrain")
    if mode in ("eval", "all"):
        res = sinusoid.evaluate(cfg, workdir, cfg.meta.eval_tasks, cfg.meta.eval_steps)
        print(json.dumps(res, indent=1))
    return 0
