"""Config validation shared by the experiment families: each check names the field by its full path and what
is allowed (one `error:` line through `MetamusicError`)."""

from __future__ import annotations

from metamusic.data.formats import MIDI_BACKENDS
from metamusic.data.melody import MELODY_SOURCES
from metamusic.errors import check_choice, check_range, comma_list


def algorithm_names(cfg, allowed) -> list[str]:
    return comma_list("meta.algorithm", cfg.meta.algorithm, allowed)


def validate_loop(cfg) -> None:
    check_range("seed", cfg.seed, 0)
    check_range("steps", cfg.steps, 1)
    check_range("log_every", cfg.log_every, 1)
    check_range("checkpoint_every", cfg.checkpoint_every, 1)
    check_range("eval_every", cfg.get("eval_every", 0), 0)
    check_range("max_bad_streak", cfg.get("max_bad_streak", 20), 1)
    check_range("meta.batch", cfg.meta.batch, 1)
    if "task_map" in cfg.meta:
        from metamusic.meta.outer import TASK_MAPS

        check_choice("meta.task_map", cfg.meta.task_map, TASK_MAPS + ("auto",))
    if "sharding" in cfg:
        check_range("sharding.devices", cfg.sharding.devices, -1)
        cpu = cfg.sharding.get("cpu_devices", 0)
        check_range("sharding.cpu_devices", cpu, 0)
        if cpu > 1 and cfg.meta.batch % cpu:
            raise_bad("sharding.cpu_devices", cpu, f"a divisor of meta.batch={cfg.meta.batch} (or 0 / 1: off)")


def validate_data(cfg, *, min_length: int = 2) -> None:
    d = cfg.data
    check_range("data.steps_per_quarter", d.steps_per_quarter, 1)
    check_range("data.min_note", d.min_note, 0, 127)
    check_range("data.max_note", d.max_note, d.min_note + 1, 128)
    check_range("data.min_tunes", d.min_tunes, 2)
    check_range("data.shots", d.shots, 1)
    check_range("data.queries", d.queries, 1)
    check_range("data.length", d.length, min_length)
    check_range("data.transpose", d.transpose, 0, 12)
    check_range("data.workers", d.workers, 0)
    if "midi_backend" in d:
        check_choice("data.midi_backend", d.midi_backend, MIDI_BACKENDS)
    if d.get("melody") is not None:  # older runs lack the field (legacy.ADDED fills it)
        check_choice("data.melody", d.melody, MELODY_SOURCES)
    check_range("data.split_seed", d.split_seed, 0)
    if "near_dup_threshold" in d:
        check_range("data.near_dup_threshold", d.near_dup_threshold, 0, 1, integer=False)
    if "bar_position" in d:
        check_choice("data.bar_position", d.bar_position, (True, False))
    check_list("eval.shots", cfg.eval.shots)
    for k in cfg.eval.shots:
        check_range("eval.shots (each)", k, 1)


def validate_optim(cfg) -> None:
    check_positive("optim.lr", cfg.optim.lr)
    check_range("optim.clip", cfg.optim.clip, 0, integer=False)
    if "schedule" in cfg.optim:
        check_choice("optim.schedule", cfg.optim.schedule, ("constant", "cosine"))


def raise_bad(field: str, value, must: str):
    from metamusic.errors import MetamusicError

    raise MetamusicError(f"{field}={value!r} is out of range; it must be {must}")


def check_positive(field: str, value) -> None:
    check_range(field, value, integer=False)
    if value <= 0:
        raise_bad(field, value, "> 0")


def check_list(field: str, value, *, empty: bool = False) -> None:
    """A list-valued field (e.g. eval.shots) must be a list or tuple, and not empty unless `empty`."""
    from metamusic.errors import MetamusicError

    if not isinstance(value, (list, tuple)):
        raise MetamusicError(f"{field}={value!r} must be a list like 1,5,10 (--config.{field}=1,5,10)")
    if not value and not empty:
        raise MetamusicError(f"{field}={value!r} must not be empty; give a list like 1,5,10")
