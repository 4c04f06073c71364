"""A run's folders, checked before any work: writable, not in use by another run, not holding a run of
another configuration.

Every check raises `MetamusicError` with one line naming the folder and the fix, so a command fails
before the ingest or the first compile, and never after hours of work or after overwriting the
config.json of the run it would damage.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile

from metamusic.errors import MetamusicError

# The config sections and fields a run's checkpoints depend on: resuming under other values would load
# parameters of another shape or continue on another corpus, split or random stream.
RESUME_SECTIONS = ("model", "data")
RESUME_FIELDS = ("seed", "experiment")
LOCK = ".lock"


def check_writable_folder(path: str, flag: str) -> None:
    """`path` is, or can be created as, a folder this process can write into."""
    if not path:
        raise MetamusicError(f"{flag}= is empty; give a folder (it is created if missing)")
    if os.path.exists(path) and not os.path.isdir(path):
        raise MetamusicError(f"{flag}={path} is a file; give a folder (it is created if missing)")
    if os.path.islink(path) and not os.path.exists(path):  # (makedirs would say only "File exists")
        raise MetamusicError(f"{flag}={path} is a symlink to {os.readlink(path)}, which does not exist; "
                             "create that folder, or give another one")
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        why = "read-only file system" if e.errno == errno.EROFS else (e.strerror or str(e))
        raise MetamusicError(f"{flag}={path} is not writable ({why}); give a folder you can write to") from None


def _norm(value):
    return json.loads(json.dumps(value, default=str))  # tuples and lists compare equal


def _same_folder(a, b) -> bool:
    """Two spellings of one folder (a trailing slash, a relative path, a link), as the corpus cache reads them."""
    try:
        return os.path.realpath(str(a)) == os.path.realpath(str(b))
    except (OSError, ValueError):
        return False


def saved_steps(workdir: str) -> set:
    """(method, step) of every checkpoint step folder in the workdir."""
    out = set()
    for name in os.listdir(workdir) if os.path.isdir(workdir) else ():
        ck = os.path.join(workdir, name, "checkpoints")
        if os.path.isdir(ck):
            out |= {(name, d) for d in os.listdir(ck) if d.isdigit()}
    return out


def _has_checkpoints(workdir: str) -> bool:
    return bool(saved_steps(workdir))


def check_resume(cfg, workdir: str) -> None:
    """Refuses to train into a workdir whose trained run used another model, data or seed (its config.json
    and checkpoints would be overwritten or mixed); other fields (steps, methods, eval) may change."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path) or not _has_checkpoints(workdir):
        return
    from metamusic import experiments

    try:
        trained = experiments.run_config(workdir, cfg.get("experiment", ""))
    except experiments.ConfigFileError:
        raise
    except (MetamusicError, ValueError) as e:
        raise MetamusicError(f"--workdir={workdir} holds a run whose config.json cannot be read as this "
                             f"experiment ({e}); use another --workdir") from None
    diffs = config_diffs(cfg, trained, RESUME_SECTIONS, RESUME_FIELDS)
    if diffs:
        raise MetamusicError(f"--workdir={workdir} holds a run trained with {', '.join(diffs[:4])}"
                             f"{' and more' if len(diffs) > 4 else ''}; resume it with its own config, or train "
                             "into another --workdir")


def field_paths(cfg, prefix: str = "") -> list[str]:
    """Every field path of a ConfigDict (sections included), e.g. "meta", "meta.inner_lr"."""
    out = []
    for k, v in cfg.items():
        out.append(prefix + k)
        if hasattr(v, "items"):
            out += field_paths(v, prefix + k + ".")
    return out


def get_field(node, field: str):
    """cfg.<field> by its dotted path, or None where there is no such field."""
    for part in field.split("."):
        if not hasattr(node, "items") or part not in node:
            return None
        node = node[part]
    return node


def config_diffs(now, then, sections, fields=()) -> list[str]:
    """`section.field=<then> (now <now>)` for every leaf of `sections` (and top-level `fields`) whose value in
    `then` (a trained run's config) differs from `now`; fields `then` lacks are not compared."""
    diffs = [f"{f}={_norm(then.get(f))!r} (now {_norm(now.get(f))!r})" for f in fields
             if f in then and _norm(then.get(f)) != _norm(now.get(f))]
    for section in sections:
        if section not in now or section not in then:
            continue
        for field in field_paths(now[section]):
            a, b = get_field(now[section], field), get_field(then[section], field)
            if field.endswith("root") and a and b and _same_folder(a, b):
                continue
            if b is not None and not hasattr(a, "items") and _norm(a) != _norm(b):
                diffs.append(f"{section}.{field}={_norm(b)!r} (now {_norm(a)!r})")
    return diffs


@contextlib.contextmanager
def config_written(cfg, workdir: str, write: bool = True):
    """Training into `workdir` under `cfg`, for the `with` block: refused first if the workdir holds a run of
    another model, data or seed (`check_resume`, before anything is written); then config.json records `cfg`
    (when `write`: the host that writes). A config.json this adds (a new workdir, or one whose file was deleted) is
    removed again if the block fails with a MetamusicError before any checkpoint of its own is saved, so a refused
    command does not leave a record that would refuse the right one."""
    check_resume(cfg, workdir)
    if not write:
        yield
        return
    path = os.path.join(workdir, "config.json")
    before = None if os.path.exists(path) else saved_steps(workdir)
    with open(path, "w") as f:
        f.write(cfg.to_json_best_effort(indent=1))
    try:
        yield
    except MetamusicError:
        if before is not None and saved_steps(workdir) == before:
            os.remove(path)
        raise


@contextlib.contextmanager
def locked(workdir: str):
    """Holds workdir/.lock for the duration (an advisory lock, released when the process ends however it
    ends); a second run into the same workdir gets one line naming the first's process."""
    import fcntl

    path = os.path.join(workdir, LOCK)
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise MetamusicError(f"--workdir={workdir} is in use by another run ({holder}); wait for it to finish "
                             "or use another --workdir") from None
    try:
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            f.truncate(0)
        f.close()
