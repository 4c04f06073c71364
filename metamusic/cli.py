"""What the run_*.py entry scripts call: argument and config parsing, validation, mode dispatch.

One error policy: every error a user can cause (a flag, a config file or field, a
value out of range, a missing folder, data that cannot serve the request) ends the
command with exit status 2 and one line on stderr, `error: ...`, naming the field
and what is allowed. The config is parsed and validated once, before any corpus
load or compile. Programming errors still raise with their traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys

from metamusic.config_file import load_config, set_field
from metamusic.errors import MetamusicError
from metamusic.run_checks import check_runs_read_by_the_evaluation, warn_if_partly_trained, warn_if_trained_differently

# The flags each entry script defines besides --config: name -> (default, help)
FLAG_HELP = {
    "workdir": "where checkpoints, metrics and results go",
    "style": "generate: a catalog style name or a folder of music files",
    "shots": "generate: K support tunes to adapt on (default 5)",
    "out": {"generate": "generate: output folder for .mid, .wav and .png files (default samples)",
            "classify": "classify: the CSV file (default WORKDIR/classify.csv)"},
    "method": "generate: a trained method, or finetune (default: the first meta-learned algorithm)",
    "support": "classify: folder with one subfolder of example files per style",
    "query": "classify: query files or folders (repeatable)",
}
# The flags each mode reads besides --config, --workdir and --mode.
MODE_FLAGS = {"generate": ("style", "shots", "out", "method"), "classify": ("support", "query", "out")}
# Each entry script's defaults and modes; the families it runs are those whose `Family.script` names it.
SCRIPTS = {
    "run_maml.py": {"config": "configs/maml.py", "workdir": "runs/maml", "modes": ("train", "eval", "generate", "all")},
    "run_gan.py": {"config": "configs/gan.py", "workdir": "runs/gan", "modes": ("train", "eval", "generate", "all")},
    "run_relation.py": {"config": "configs/relation.py", "workdir": "runs/relation",
                        "modes": ("train", "eval", "classify", "all")},
}


def main(script: str, argv: list[str]) -> int:
    """Runs an entry script's command line; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):  # a file or folder name that is not UTF-8 is printed escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    import signal

    # SIGTERM (a scheduler, `kill`) stops a run as Ctrl-C does: the loop's cleanup finishes the pending
    # checkpoint, and the command ends with one line and the shell's status for the signal
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if _main_thread() else None
    args = None
    try:
        args, cfg = parse(script, argv)
        if args is None:
            return 0
        return run(cfg, args)
    except MetamusicError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        term = isinstance(e, Terminated)
        where = args["workdir"] if args else None
        if where and os.path.isdir(where):
            from metamusic.checkpoints import remove_partial

            remove_partial(where)
        print(f"interrupted ({'SIGTERM' if term else 'Ctrl-C'})"
              + (f": the checkpoints written so far are kept in {where}; run the same command to resume"
                 if where else ""), file=sys.stderr)
        return 143 if term else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so a run stops through the same cleanup as Ctrl-C."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# -- parsing --

def parse(script: str, argv: list[str]):
    """(flags dict, validated config) from the command line; (None, None) after --help."""
    spec = SCRIPTS[script]
    args = {"config": spec["config"], "workdir": spec["workdir"], "mode": "train", "style": None, "shots": 5,
            "out": None, "method": None, "support": None, "query": []}
    overrides, given = [], set()
    it = iter(argv)
    for a in it:
        if a in ("-h", "--help", "--helpfull"):
            print(usage(script))
            return None, None
        if not a.startswith("--"):
            raise MetamusicError(f"unexpected argument {a!r}; flags look like --name=value (see --help)")
        name, eq, value = a[2:].partition("=")
        if not eq:
            value = next(it, None)
            if value is None:
                raise MetamusicError(f"--{name} needs a value")
        if value == "~" or value.startswith("~/"):  # a path the shell left as typed (after "=" it does not expand ~)
            value = os.path.expanduser(value)
        if name.startswith("config."):
            overrides.append((name[len("config."):], value))
        elif name in args:
            args[name] = args[name] + [value] if name == "query" else value
            given.add(name)
        else:
            import difflib

            near = difflib.get_close_matches(name, list(args), n=1)
            raise MetamusicError(f"unknown flag --{name}" + (f"; did you mean --{near[0]}?" if near else "")
                                 + f" (flags: {', '.join('--' + k for k in args)}, --config.FIELD=VALUE)")
    if args["mode"] not in spec["modes"]:
        raise MetamusicError(f"--mode={args['mode']!r} is not allowed; choose one of {list(spec['modes'])}")
    reads = MODE_FLAGS.get(args["mode"], ())
    unread = sorted(given - {"config", "workdir", "mode"} - set(reads))
    if unread:  # a flag the mode never reads would be ignored without a word (e.g. --method with classify)
        raise MetamusicError(f"--{unread[0]} does not apply to --mode={args['mode']}"
                             + (f" (it reads {', '.join('--' + f for f in reads)})" if reads else
                                " (it reads only --config, --workdir and --config.FIELD=VALUE)"))
    try:
        args["shots"] = int(args["shots"])
    except ValueError:
        raise MetamusicError(f"--shots={args['shots']!r} must be an integer") from None
    if args["config"] == spec["config"] and not os.path.isfile(args["config"]):  # run from another folder
        args["config"] = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), spec["config"])
    cfg = load_config(args["config"])
    for field, value in overrides:
        set_field(cfg, field, value)
    from metamusic import experiments

    runs = [name for name, fam in experiments.EXPERIMENTS.items() if fam.script == script]
    if cfg.get("experiment") not in runs:
        raise MetamusicError(f"experiment={cfg.get('experiment')!r} cannot run with {script}; it runs {runs}")
    check_args(cfg, args)

    experiments.validate(cfg)
    return args, cfg


def usage(script: str) -> str:
    """The script's --help: its own modes, and the flags those modes read, with their defaults."""
    spec = SCRIPTS[script]
    lines = [f"python {script} --config=CONFIG.py [--config.FIELD=VALUE ...] [flags]",
             f"  --config    ml_collections config file (default {spec['config']})",
             f"  --mode      one of {', '.join(spec['modes'])} (default train; all: train, then eval)",
             f"  --workdir   {FLAG_HELP['workdir']} (default {spec['workdir']})"]
    for mode in spec["modes"]:
        for k in MODE_FLAGS.get(mode, ()):
            text = FLAG_HELP[k]
            lines.append(f"  --{k:9} {text[mode] if isinstance(text, dict) else text}")
    return "\n".join(lines)


def check_args(cfg, args) -> None:
    """Checks on flags and paths that need no corpus: a workdir that is a file, missing folders."""
    wd = args["workdir"]
    if os.path.exists(wd) and not os.path.isdir(wd):
        raise MetamusicError(f"--workdir={wd} is a file; give a folder (it is created if missing)")
    root = cfg.data.get("root", "") if "data" in cfg else ""
    if root and not os.path.isdir(root):
        raise MetamusicError(f"data.root={root!r} does not exist or is not a folder; expected ROOT/<style>/<files>")
    eval_root = cfg.eval.get("root", "") if "eval" in cfg else ""
    if eval_root and not os.path.isdir(eval_root):
        raise MetamusicError(f"eval.root={eval_root!r} does not exist or is not a folder; expected ROOT/<style>/<files>")
    mode = args["mode"]
    if mode == "generate":
        style = args["style"]
        if not style:
            raise MetamusicError("--mode=generate needs --style=NAME (a catalog style) or a folder of files")
        if _looks_like_path(style) and not os.path.isdir(style):
            raise MetamusicError(f"--style={style}: no such folder (give a folder of music files or a catalog "
                                 "style name such as oneills/jig)")
        if args["shots"] < 1:
            raise MetamusicError(f"--shots={args['shots']} is out of range; it must be >= 1")
    if mode == "classify":
        if not args["support"]:
            raise MetamusicError("--mode=classify needs --support=DIR with one subfolder of example files per style")
        if not args["query"]:
            raise MetamusicError("--mode=classify needs --query=FILE_OR_DIR (repeatable)")
        for q in args["query"]:
            if not os.path.exists(q):
                raise MetamusicError(f"--query={q}: no such file or folder")


def _looks_like_path(style: str) -> bool:
    return os.path.exists(style) or style.startswith(("/", "./", "../", "~"))


# -- running --

def _primary() -> bool:
    """Process 0 of a multi-process (jax.distributed) run, or the only process: the one that writes files."""
    import jax

    return jax.process_index() == 0


def run(cfg, args) -> int:
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)  # keep XLA and orbax INFO lines off the console
    workdir, mode = args["workdir"], args["mode"]
    from metamusic.train.sharding import split_cpu

    split_cpu(cfg)  # before anything touches a device
    from metamusic import compile_cache

    compile_cache.enable(cfg.data.get("cache_dir", "") if "data" in cfg else "")  # before the first compile
    if mode == "classify":
        return _classify(workdir, args["support"], args["query"], args["out"] or os.path.join(workdir, "classify.csv"))
    from metamusic.workdir import check_writable_folder, config_written, locked

    writes = mode in ("train", "eval", "all")  # generation reads the workdir and writes under --out
    if writes:
        check_writable_folder(workdir, "--workdir")
    elif not os.path.isdir(workdir):
        raise MetamusicError(f"--workdir={workdir} does not exist; train a run there first (--mode=train)")
    else:
        args["out"] = args["out"] or "samples"
        check_writable_folder(args["out"], "--out")
    if mode in ("eval", "generate"):
        warn_if_trained_differently(cfg, workdir)
    if mode in ("eval", "all"):
        check_runs_read_by_the_evaluation(cfg)
    # eval and generation read the config the model was trained with, which training writes (the first host)
    trains = config_written(cfg, workdir, _primary()) if mode in ("train", "all") else contextlib.nullcontext()
    with locked(workdir) if writes and _primary() else contextlib.nullcontext(), trains:
        return _run_mode(cfg, args, workdir, mode)


def _run_mode(cfg, args, workdir: str, mode: str) -> int:
    from metamusic import experiments
    from metamusic.timing import PhaseTimer

    timer = PhaseTimer()
    with timer.phase("data (first ingest, or the cached corpus)"):
        corpus = experiments.load_data(cfg) if "data" in cfg and experiments.family(cfg).uses_corpus else None
        exp = experiments.build(cfg, corpus)
    if mode in ("train", "all"):
        from metamusic.train.trainer import train

        for name in exp.methods:
            with timer.phase(f"train {name}") as row:
                stats = {}
                state = train(exp, workdir, name, stats=stats)  # (stats: the step it resumed from)
                row["steps"] = int(state.step) - stats["start"]
    if mode == "eval":
        warn_if_partly_trained(exp, workdir)
    if mode in ("eval", "all"):
        with timer.phase("evaluate"):
            _evaluate(exp, workdir)
    if mode != "generate":
        timer.report(workdir, mode, write=_primary())
    if mode == "generate":
        from metamusic.generate import generate

        for p in generate(exp, workdir, style=args["style"], shots=args["shots"], out=args["out"],
                          method=args["method"]):
            print(p)
    return 0


def _eval_name(workdir: str, root: str) -> str:
    """eval_<folder name>: the report files of an evaluation on `root`; where that name already holds the
    evaluation of another folder of the same name (data/a/jigs and data/b/jigs), the name gains a short hash of
    this folder's real path, so neither evaluation overwrites the other's report."""
    import hashlib
    import json

    name = "eval_" + os.path.basename(os.path.normpath(root))
    try:
        cfg = json.load(open(os.path.join(workdir, name + ".json"), encoding="utf-8")).get("config", {})
        before = next(cfg[k] for k in ("test_root", "corpus") if isinstance(cfg.get(k), str) and cfg[k])
    except (OSError, ValueError, StopIteration, AttributeError):
        return name  # no earlier report under this name, or one that does not say its folder
    if os.path.realpath(before) == os.path.realpath(root):
        return name
    return f"{name}_{hashlib.sha1(os.path.realpath(root).encode()).hexdigest()[:6]}"


def _evaluate(exp, workdir: str) -> None:
    """Runs the family's evaluation (on eval.root's styles where set and the family can) and prints its
    report (workdir/<name>.md, or the results as JSON for a family that writes no report)."""
    import json

    from metamusic import experiments

    fam = experiments.EXPERIMENTS[exp.family]
    kwargs, name = {}, "eval"
    if fam.cross_corpus and exp.cfg.eval.get("root"):
        name, folder = _eval_name(workdir, exp.cfg.eval.root), os.path.basename(os.path.normpath(exp.cfg.eval.root))
        if name != "eval_" + folder:
            print(f"{workdir} holds the report of another folder named {folder!r}; this one is written as {name}.*")
        test = experiments.load_test_data(exp.cfg, exp.corpus)
        r, dropped = test.report, test.report.get("dropped", {})
        from metamusic.data import dropped_summary

        root = exp.cfg.eval.root
        copies = r.get("dedup", {}).get("removed", 0)
        empty = sorted(n.split("/", 1)[-1] for n, src in r.get("sources", {}).items()
                       if not src.get("melodies") and not n.split("/", 1)[-1].startswith("."))
        print(f"{root}: {len(test.styles)} styles, {len(test.meta)} tunes as meta-test; skipped {r.get('skipped', 0)} "
              "files or tunes (unreadable, too short or without pitched notes"
              + (f"; `python -m metamusic.data catalog --root {root} --skipped` lists each)" if r.get("skipped") else ")")
              + (f"; {copies} exact duplicates within the folder removed" if copies else "")
              + (f"; style folders with no usable tune: {', '.join(empty)}" if empty else "")
              + f"; {dropped_summary(dropped)}")
        kwargs = {"test_corpus": test, "name": name}
    out = fam.evaluate(exp, workdir, **kwargs)
    report = os.path.join(workdir, name + ".md")
    print(open(report, encoding="utf-8", errors="replace").read() if os.path.exists(report) else json.dumps(out, indent=1))


def _classify(workdir: str, support: str, query, out: str) -> int:
    """Prints a table of the query tunes (tune, predicted style, its score, the score per style) given example
    files per style (`eval.style_fidelity.score_files`: the run's best row on meta-val), and writes it as CSV
    to `out`."""
    import csv

    from metamusic.eval.style_fidelity import score_files

    from metamusic.workdir import check_writable_folder

    if os.path.isdir(out):  # checked before any scoring, so a table is never computed only to be lost
        raise MetamusicError(f"--out={out} is a folder; give the path of a .csv file")
    check_writable_folder(os.path.dirname(os.path.abspath(out)), "--out (its folder)")
    styles, scored, skipped, row = score_files(workdir, support, query)
    for side in ("support", "query"):
        for s in skipped[side]:
            print(f"skipped ({side}) {s}", file=sys.stderr)
    print(f"scored by {row}")
    header = ["tune", "predicted", "score"] + list(styles)
    table = [[name, styles[int(row.argmax())], f"{row.max():.3f}"] + [f"{v:.3f}" for v in row] for name, row in scored]
    widths = [max(len(str(r[i])) for r in [header] + table) for i in range(len(header))]
    for r in [header] + table:
        print("  ".join(f"{str(v):{w}}" for v, w in zip(r, widths)).rstrip())
    folder = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(folder, exist_ok=True)
        with open(out, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
            csv.writer(f).writerows([header] + table)
    except OSError as e:
        raise MetamusicError(f"--out={out}: cannot write the CSV ({e.strerror or e})") from e
    print(f"{len(table)} tunes classified (skipped: {len(skipped['query'])} query and {len(skipped['support'])} support "
          f"files or tunes): {out}")
    return 0
