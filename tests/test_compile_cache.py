"""The persistent XLA compilation cache (metamusic.compile_cache): where it goes, and that a second process
reads a program back instead of compiling it, with the same result."""

import json
import os
import subprocess
import sys

from metamusic import compile_cache

# A fresh process: turn the cache on for the data cache folder argv[1], compile and run one program, print
# whether the cache answered and the result.
_CHILD = r"""
import json, sys
from jax import monitoring
from metamusic import compile_cache
events = []
monitoring.register_event_listener(lambda e, **kw: events.append(e))
folder = compile_cache.enable(sys.argv[1])
import jax, jax.numpy as jnp
x = jnp.arange(64.0).reshape(8, 8)
y = jax.jit(lambda a: jnp.tanh(a @ a.T).sum(0))(x)
print(json.dumps({"folder": folder, "hits": events.count("/jax/compilation_cache/cache_hits"),
                  "misses": events.count("/jax/compilation_cache/cache_misses"), "y": y.tolist()}))
"""


def _child(data_cache, env):
    out = subprocess.run([sys.executable, "-c", _CHILD, data_cache], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_reads_the_program_back_with_the_same_result(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", "METAMUSIC_XLA_CACHE")}
    first = _child(str(tmp_path), env)
    assert first["folder"] == str(tmp_path / "xla")  # under the run's data cache folder
    assert first["misses"] >= 1 and first["hits"] == 0
    assert os.listdir(tmp_path / "xla")
    second = _child(str(tmp_path), env)
    assert second["hits"] >= 1 and second["misses"] == 0
    assert second["y"] == first["y"]


def test_the_environment_chooses_the_folder_or_turns_it_off(tmp_path, monkeypatch):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("METAMUSIC_XLA_CACHE", raising=False)
    assert compile_cache.cache_folder(str(tmp_path)) == str(tmp_path / "xla")
    monkeypatch.setenv("METAMUSIC_XLA_CACHE", str(tmp_path / "mine"))
    assert compile_cache.cache_folder(str(tmp_path)) == str(tmp_path / "mine")
    monkeypatch.setenv("METAMUSIC_XLA_CACHE", "0")
    assert compile_cache.cache_folder(str(tmp_path)) is None
    monkeypatch.delenv("METAMUSIC_XLA_CACHE")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))  # JAX's own setting wins
    assert compile_cache.cache_folder(str(tmp_path)) is None
