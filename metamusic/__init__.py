"""metamusic: meta-learning for symbolic music in JAX.

The Python API (`metamusic.api`, also reachable here): config, load_corpus, build, fit, evaluate,
adapt, sample. Subpackages:
  data         files -> NoteSequences -> melody tokens -> per-style tasks (numpy only, no JAX).
  meta         model-agnostic algorithms (registry: meta.registry.ALGORITHMS).
  models       Flax modules (registry: models.MODELS).
  experiments  families wiring data, models and meta (registry: experiments.EXPERIMENTS).
  train, eval  the one training loop; the evaluations.
"""

import warnings

# note_seq imports pydub, which warns at import that ffmpeg is missing; metamusic never plays audio.
# Set here so every process (ingestion workers too) is quiet.
warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)

__version__ = "0.1.0"

_API = ("Adapted", "adapt", "build", "config", "evaluate", "load_corpus", "sample", "fit")


def __getattr__(name):
    # the API imports JAX; `import metamusic` alone (e.g. in the data layer's worker processes) does not
    if name in _API:
        from metamusic import api

        return getattr(api, name)
    raise AttributeError(f"module 'metamusic' has no attribute {name!r}")
