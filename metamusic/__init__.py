"""metamusic: meta-learning for symbolic music in JAX.

Subpackages:
  data    files -> NoteSequences -> melody tokens -> per-style tasks (numpy only, no JAX).
"""

__version__ = "0.1.0"
