"""The one exception type for errors a user can cause.

Bad config values, unknown styles, too few tunes for K shots, an unreadable
corpus root: each raises `MetamusicError` with the fix in the message, so a
researcher can catch one type and read one sentence. Per-file problems during
ingestion are *not* raised: they are recorded as skip reasons (see
`metamusic.data.formats.Skip`), because one corrupt file must never abort a run.
"""

import math


class MetamusicError(ValueError):
    """A problem with user input (config, data, arguments), with the fix in the message."""


def check_choice(field: str, value, allowed) -> None:
    """Raises MetamusicError naming `field` and the allowed values if `value` is not one."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise MetamusicError(f"{field}={value!r} is not allowed; choose one of {list(allowed)}{near_hint(value, allowed)}")


def near_hint(value, known) -> str:
    """"; did you mean X?" for the known name nearest a misspelt `value`, or "" where none is near."""
    import difflib

    if not isinstance(value, str):
        return ""
    near = difflib.get_close_matches(value, [k for k in known if isinstance(k, str)], n=1, cutoff=0.6)
    return f"; did you mean {near[0]}?" if near else ""


def comma_list(field: str, value, allowed) -> list:
    """'a, b' -> ['a', 'b'], each checked against `allowed`; empty is an error."""
    names = [v.strip() for v in str(value).split(",") if v.strip()]
    if not names:
        raise MetamusicError(f"{field} is empty; choose from {list(allowed)} (comma-separated)")
    for n in names:
        check_choice(field, n, allowed)
    return names


def check_range(field: str, value, low=None, high=None, *, integer: bool = True) -> None:
    """Raises MetamusicError naming `field` unless low <= value <= high (and an int, if `integer`)."""
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise MetamusicError(f"{field}={value!r} must be an integer")
    if not integer and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise MetamusicError(f"{field}={value!r} must be a number")
    if not integer and not math.isfinite(value):  # inf or nan: every step would be skipped as non-finite
        bounds = "a finite number" + ("" if low is None and high is None else
                                      f" {f'>= {low}' if high is None else f'<= {high}' if low is None else f'between {low} and {high}'}")
        raise MetamusicError(f"{field}={value!r} is out of range; it must be {bounds}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (f">= {low}" if high is None else f"<= {high}" if low is None else f"between {low} and {high}")
        raise MetamusicError(f"{field}={value!r} is out of range; it must be {bounds}")


def unknown_field(field: str, known) -> MetamusicError:
    """The error for a config path that does not exist, suggesting the nearest known one."""
    return MetamusicError(f"unknown config field {field!r}{near_hint(field, known)}")
