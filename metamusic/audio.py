"""Generated melodies as sound: a .wav beside every .mid, and audio for TensorBoard.

Researchers listen. Offline and with no system packages: note_seq's sine-wave
synthesis (pretty_midi's `synthesize`, here with a few harmonics and a decay so
notes have an onset), or FluidSynth with a soundfont when both are installed
(`$METAMUSIC_SOUNDFONT`, or a General MIDI soundfont in the usual Debian places,
and the `pyfluidsynth` module).
"""

from __future__ import annotations

import importlib.util
import os
import wave
from typing import Optional

import numpy as np

SAMPLE_RATE = 16000
_SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2",
               "/usr/share/soundfonts/default.sf2")


def soundfont() -> Optional[str]:
    """A soundfont to render with, when FluidSynth can use one; else None (sine-wave synthesis)."""
    if importlib.util.find_spec("fluidsynth") is None:
        return None
    for path in (os.environ.get("METAMUSIC_SOUNDFONT", ""),) + _SOUNDFONTS:
        if path and os.path.isfile(path):
            return path
    return None


def _tone(phase: np.ndarray) -> np.ndarray:
    """A periodic wave (period 2*pi) softer than a pure sine: the first three harmonics."""
    return (np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.15 * np.sin(3 * phase)) / 1.55


def render(sequence, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A NoteSequence -> float32 mono samples in [-0.9, 0.9]."""
    from note_seq import midi_synth

    sf2 = soundfont()
    if sf2:
        y = midi_synth.fluidsynth(sequence, sample_rate, sf2_path=sf2)
    else:
        y = midi_synth.synthesize(sequence, sample_rate, wave=_tone)
    end = max([n.end_time for n in sequence.notes] + [sequence.total_time])
    y = np.asarray(y, np.float32)[: int((end + 0.25) * sample_rate)]  # pretty_midi pads a silent second
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return y * (0.9 / peak) if peak > 0 else y


def write_wav(samples: np.ndarray, path: str, sample_rate: int = SAMPLE_RATE) -> str:
    """16-bit PCM mono .wav (the standard library's `wave`: no scipy or ffmpeg needed)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return path
