"""What the run_*.py entry scripts call: mode dispatch, friendly errors, result printing."""

from __future__ import annotations

import json
import os
import sys

from metamusic.errors import MetamusicError


def _start(cfg, workdir: str, mode: str) -> None:
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)  # keep XLA and orbax INFO lines off the console
    os.makedirs(workdir, exist_ok=True)
    if mode in ("train", "all"):  # eval and generation read the config the model was trained with
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(cfg.to_json_best_effort(indent=1))


def run_maml(cfg, workdir: str, mode: str, *, style=None, shots: int = 5, out: str = "samples", method=None) -> int:
    try:
        _start(cfg, workdir, mode)
        if cfg.task == "sinusoid":
            return _sinusoid(cfg, workdir, mode)
        if cfg.task != "melody":
            raise MetamusicError(f"task={cfg.task!r} is not allowed; choose one of ['melody', 'sinusoid']")
        from metamusic.eval import fewshot
        from metamusic.generate import generate
        from metamusic.train import melody as mel

        return _generators(cfg, workdir, mode, mel, fewshot.evaluate, generate,
                           style=style, shots=shots, out=out, method=method)
    except MetamusicError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run_gan(cfg, workdir: str, mode: str, *, style=None, shots: int = 5, out: str = "samples", method=None) -> int:
    try:
        _start(cfg, workdir, mode)
        from metamusic.eval import gan_eval
        from metamusic.generate import generate_gan
        from metamusic.train import gan

        return _generators(cfg, workdir, mode, gan, gan_eval.evaluate, generate_gan,
                           style=style, shots=shots, out=out, method=method)
    except MetamusicError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _generators(cfg, workdir: str, mode: str, family, evaluate, generate, *, style, shots, out, method) -> int:
    """train / eval / generate for a family of generative models (melody LMs, meta-GANs).

    `family` is its train module (`algorithms(cfg)`, `train(...)`); every meta-learned
    algorithm and the joint baseline ("pretrain") train into workdir/<name>.
    `evaluate(cfg, workdir, corpus)` writes workdir/eval.md; `generate(...)` returns paths.
    """
    from metamusic.train import melody as mel

    if mode == "generate" and not style:  # before the corpus load: a missing flag fails at once
        raise MetamusicError("--mode=generate needs --style=NAME (a catalog style) or a folder of files")
    corpus = mel.load_data(cfg)
    if mode in ("train", "all"):
        for name in family.algorithms(cfg) + ["pretrain"]:
            family.train(cfg, workdir, name, corpus)
    if mode in ("eval", "all"):
        evaluate(cfg, workdir, corpus)
        print(open(os.path.join(workdir, "eval.md")).read())
    if mode == "generate":
        for p in generate(cfg, workdir, style=style, shots=shots, out=out, method=method, corpus=corpus):
            print(p)
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


def run_relation(cfg, workdir: str, mode: str, *, support=None, query=()) -> int:
    try:
        _start(cfg, workdir, mode)
        from metamusic.train import relation as rel

        if mode == "classify":
            return _classify(workdir, support, query)
        corpus = rel.load_data(cfg)
        if mode in ("train", "all"):
            for name in rel.methods(cfg):
                rel.train(cfg, workdir, name, corpus)
        if mode in ("eval", "all"):
            from metamusic.eval import classify

            classify.evaluate(cfg, workdir, corpus)
            print(open(os.path.join(workdir, "eval.md")).read())
    except MetamusicError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _classify(workdir: str, support, query) -> int:
    """Prints each query tune's score per style, given example files per style."""
    from metamusic.eval.style_fidelity import StyleScorer, read_tunes, windows

    if not support or not os.path.isdir(support):
        raise MetamusicError("--mode=classify needs --support=DIR with one subfolder of example files per style")
    if not query:
        raise MetamusicError("--mode=classify needs --query=FILE_OR_DIR (repeatable)")
    scorer = StyleScorer(workdir)
    styles = sorted(d for d in os.listdir(support) if os.path.isdir(os.path.join(support, d)))
    sup = []
    for st in styles:
        tunes, _, skipped = read_tunes([os.path.join(support, st)], scorer.enc)
        if not tunes:
            raise MetamusicError(f"no readable tunes for style {st!r} in {support}; skipped: {skipped[:3]}")
        sup.append(windows(tunes, scorer.length, scorer.enc.pad))
    tunes, names, skipped = read_tunes(list(query), scorer.enc)
    for s in skipped:
        print(f"skipped {s}", file=sys.stderr)
    if not tunes:
        raise MetamusicError("no readable query tunes")
    scores = scorer.scores(sup, windows(tunes, scorer.length, scorer.enc.pad))
    width = max(len(s) for s in styles)
    for name, row in zip(names, scores):
        print(name)
        for st, v in sorted(zip(styles, row), key=lambda kv: -kv[1]):
            print(f"  {st:{width}}  {v:.3f}")
    return 0
