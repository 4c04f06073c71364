"""A config file and its command-line overrides: `load_config` imports a file's `get_config()`, `set_field` sets
one dotted field from its text, read as the field's current type (the entry scripts' `--config.FIELD=VALUE`, the
API's `mm.config(..., section__field=value)`). A mistake is one MetamusicError naming the file or field."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import os

from metamusic.errors import MetamusicError, unknown_field
from metamusic.workdir import field_paths


def load_config(path: str):
    """The ConfigDict of `get_config()` in a config file."""
    if not os.path.isfile(path):
        raise MetamusicError(f"--config={path}: no such file (configs live in configs/, e.g. configs/maml.py)")
    if not path.endswith(".py"):
        raise MetamusicError(f"--config={path}: a config is a Python file defining get_config(), e.g. configs/maml.py "
                             "(a run's own config.json is read from its --workdir)")
    mod_spec = importlib.util.spec_from_file_location(f"_metamusic_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except SyntaxError as e:
        raise MetamusicError(f"--config={path}: syntax error at line {e.lineno}: {e.msg}") from None
    except Exception as e:  # a config file is the user's code: its failure is their mistake, in one line
        raise MetamusicError(f"--config={path} raised {type(e).__name__} on import: {e}") from None
    if not callable(getattr(module, "get_config", None)):
        raise MetamusicError(f"--config={path} defines no get_config()")
    try:
        cfg = module.get_config()
    except Exception as e:
        raise MetamusicError(f"--config={path}: get_config() raised {type(e).__name__}: {e}") from None
    import ml_collections

    if not isinstance(cfg, ml_collections.ConfigDict):
        raise MetamusicError(f"--config={path}: get_config() returned a {type(cfg).__name__}, not an "
                             "ml_collections.ConfigDict")
    return cfg


def _per_algorithm_default(name: str, field: str):
    """The default of meta.per_algorithm.<name>.<field>, whose type a command-line value is read as (an
    unknown name or field is read as an integer and refused by validation, which lists what is allowed)."""
    from metamusic.meta.registry import option_default

    default = option_default(name, field)
    return 0 if default is None else default


# Sections whose entries a command line may add (<section>.<name>.<field>), with (name, field) -> the
# default whose type the value is read as: per-algorithm settings name any registered algorithm, not only
# those the config file lists (validated later).
OPEN_SECTIONS = {"meta.per_algorithm": _per_algorithm_default}


def set_field(cfg, field: str, text: str) -> None:
    """cfg.<field> = text parsed as the field's current type; unknown fields suggest the nearest name."""
    import ml_collections

    *path, leaf = field.split(".")
    opened = ".".join(path[:-1]) in OPEN_SECTIONS and len(path) >= 3
    node = cfg
    for i, p in enumerate(path):
        if opened and i == len(path) - 1 and p not in node:
            with node.unlocked():
                node[p] = ml_collections.ConfigDict()
        if p not in node or not isinstance(node[p], ml_collections.ConfigDict):
            raise unknown_field(field, field_paths(cfg))
        node = node[p]
    if leaf not in node:
        if not opened:
            raise unknown_field(field, field_paths(cfg))
        with node.unlocked():
            node[leaf] = OPEN_SECTIONS[".".join(path[:-1])](path[-1], leaf)
    old = node[leaf]
    if isinstance(old, ml_collections.ConfigDict):
        raise MetamusicError(f"{field} is a section; set one of its fields, e.g. {field}.{next(iter(old), '...')}")
    with node.unlocked() if hasattr(node, "unlocked") else contextlib.nullcontext():
        node[leaf] = _convert(field, old, text)


def _convert(field: str, old, text: str):
    def bad(kind):
        return MetamusicError(f"{field}={text!r} must be {kind}")

    if isinstance(old, bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise bad("true or false")
    if isinstance(old, int):
        try:
            return int(text)
        except ValueError:
            raise bad("an integer") from None
    if isinstance(old, float):
        try:
            return float(text)
        except ValueError:
            raise bad("a number") from None
    if isinstance(old, (tuple, list)) and old and all(isinstance(x, str) for x in old):
        return tuple(x.strip() for x in text.split(",") if x.strip())  # names: amortized,cavia
    if isinstance(old, (tuple, list)):
        try:
            v = ast.literal_eval(text if text.strip() else "()")
        except (ValueError, SyntaxError):
            raise bad("a list like 1,5,10") from None
        v = tuple(v) if isinstance(v, (tuple, list)) else (v,)
        if old and isinstance(old[0], (int, float)) and not all(isinstance(x, (int, float)) for x in v):
            raise bad("a list of numbers like 1,5,10")
        return v
    return text
