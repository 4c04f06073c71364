"""Music files -> per-style melody tasks. numpy, note_seq and music21 only: no JAX here.

Entry points:
  load_corpus()                   the encoded, de-duplicated, split corpus (cached)
  TaskSampler / EpisodeSampler    numpy episode samplers with explicit Generators
  EncodingConfig, SplitConfig     settings (both part of the cache key)
CLI: `python -m metamusic.data catalog [--root DIR] [--json]`.
"""

from metamusic.data.dataset import Corpus, dropped_summary, load_corpus, without_tunes
from metamusic.data.episodes import EpisodeSampler, Episodes, TaskSampler, Tasks, step_rng
from metamusic.data.melody import EncodingConfig
from metamusic.data.splits import SplitConfig

__all__ = ["Corpus", "dropped_summary", "load_corpus", "without_tunes", "TaskSampler", "EpisodeSampler", "Tasks",
           "Episodes", "step_rng", "EncodingConfig", "SplitConfig"]
