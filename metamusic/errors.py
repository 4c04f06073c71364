"""The one exception type for errors a user can cause.

Bad config values, unknown styles, too few tunes for K shots, an unreadable
corpus root: each raises `MetamusicError` with the fix in the message, so a
researcher can catch one type and read one sentence. Per-file problems during
ingestion are *not* raised: they are recorded as skip reasons (see
`metamusic.data.formats.Skip`), because one corrupt file must never abort a run.
"""


class MetamusicError(ValueError):
    """A problem with user input (config, data, arguments), with the fix in the message."""


def check_choice(field: str, value, allowed) -> None:
    """Raises MetamusicError naming `field` and the allowed values if `value` is not one."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise MetamusicError(f"{field}={value!r} is not allowed; choose one of {list(allowed)}")


def comma_list(field: str, value, allowed) -> list:
    """'a, b' -> ['a', 'b'], each checked against `allowed`; empty is an error."""
    names = [v.strip() for v in str(value).split(",") if v.strip()]
    if not names:
        raise MetamusicError(f"{field} is empty; choose from {list(allowed)} (comma-separated)")
    for n in names:
        check_choice(field, n, allowed)
    return names
