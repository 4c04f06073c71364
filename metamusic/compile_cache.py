"""A persistent XLA compilation cache for every command: a program is compiled once and read back from disk.

Why: an evaluation compiles dozens of programs (each method's adaptation curves at each K, the tuning's
curves, the ceiling's fits), each in seconds on a CPU, and a second evaluation of the same run, or one on a
user's folder (whose episodes have the run's shapes), builds the same programs again. Within one command
two methods can also build the very same program (FOMAML's and MAML's adaptation at evaluation are one
inner loop), and the second is then read back instead of compiled. JAX's own cache
(`jax_compilation_cache_dir`) keys each executable by its program, the compile options, the backend and
the JAX version, so a hit runs the executable a compile would have produced: it changes how often a
program is compiled, never which executable runs.

Where: <the data cache folder>/xla (`data.cache_dir`, else $METAMUSIC_CACHE_DIR or ~/.cache/metamusic),
at most `MAX_BYTES` on disk, the least recently used entries evicted first (an evaluation's programs take a
few MB). METAMUSIC_XLA_CACHE=0 turns the cache off and METAMUSIC_XLA_CACHE=FOLDER puts it there;
JAX_COMPILATION_CACHE_DIR, when set, wins over both (the test suite shares one cache that way).
"""

from __future__ import annotations

import os
from typing import Optional

MAX_BYTES = 2 << 30


def cache_folder(cache_dir: Optional[str] = None) -> Optional[str]:
    """The folder the cache uses for a run whose data cache is `cache_dir` ("" or None: the default), or None
    where it is off (METAMUSIC_XLA_CACHE=0) or JAX_COMPILATION_CACHE_DIR chose one."""
    choice = os.environ.get("METAMUSIC_XLA_CACHE", "")
    if choice == "0" or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    if choice:
        return os.path.expanduser(choice)
    from metamusic.data.cache import default_cache_dir

    return os.path.join(cache_dir or default_cache_dir(), "xla")


def enable(cache_dir: Optional[str] = None) -> Optional[str]:
    """Turns the cache on for this process (before its first compile); returns its folder, or None where it
    stays as the environment set it. A folder that cannot be made leaves the cache off with one line."""
    import sys

    import jax

    folder = cache_folder(cache_dir)
    if folder is None:
        return None
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        print(f"warning: no XLA compilation cache ({folder}: {e.strerror}); every program is compiled", file=sys.stderr)
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return folder
