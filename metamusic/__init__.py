"""metamusic: meta-learning for symbolic music in JAX.

Subpackages:
  data    files -> NoteSequences -> melody tokens -> per-style tasks (numpy only, no JAX).
"""

import warnings

# note_seq imports pydub, which warns at import that ffmpeg is missing; metamusic never plays audio.
# Set here so every process (ingestion workers too) is quiet.
warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)

__version__ = "0.1.0"
