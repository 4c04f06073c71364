import os
import shutil
import tempfile

import pytest

_XLA_CACHE = []


def pytest_configure(config):
    """One persistent XLA compilation cache for the session, in a fresh folder removed at the end: many tests
    compile the same small models' functions again (new closures of the same program), and the command-line
    tests' subprocesses inherit it through the environment. It changes how often a program is compiled,
    never which executable runs."""
    d = os.environ.get("JAX_COMPILATION_CACHE_DIR") if os.environ.get("PYTEST_XDIST_WORKER") else None
    if d is None:  # the main process makes it; pytest-xdist's workers share it and leave its removal to it
        d = tempfile.mkdtemp(prefix="metamusic_xla_cache_")
        _XLA_CACHE.append(d)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = d
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    import jax

    jax.config.update("jax_compilation_cache_dir", d)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject's addopts): one worker per core, at most 4. Each worker builds its own JAX runtime
    and small trained runs, and the end-to-end files are few, so more workers mostly add memory."""
    from metamusic.data.ingest import default_workers

    return min(default_workers(), 4)


def pytest_unconfigure(config):
    for d in _XLA_CACHE:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def style_corpus(tmp_path_factory):
    """A small user corpus (4 synthetic styles x 12 tunes), ingested once for the session."""
    import synth
    from metamusic.data import SplitConfig, load_corpus

    root = synth.make_style_corpus(str(tmp_path_factory.mktemp("corpus")), n_tunes=12)
    cache_dir = str(tmp_path_factory.mktemp("cache"))
    c = load_corpus(root, cache_dir=cache_dir, workers=1, progress=False,
                    split=SplitConfig(min_tunes=4, val_fraction=0.25, test_fraction=0.25))
    return c


@pytest.fixture
def closed_phases(monkeypatch):
    """Every progress bar closed during the test, as (phase, units done, its total when it closed)."""
    from metamusic import progress

    closed = []

    class Recording(progress.Phase):
        def close(self):
            closed.append((self.desc, self.done, self.total))
            super().close()

    monkeypatch.setattr(progress, "Phase", Recording)
    return closed
