"""Generated melodies can be listened to: the .wav holds the notes at their pitch and for their time."""

import wave

import numpy as np

from metamusic import audio


def test_rendered_wav_has_the_notes_pitch_and_length(tmp_path):
    from note_seq.protobuf import music_pb2

    ns = music_pb2.NoteSequence()
    ns.tempos.add(qpm=120)
    ns.notes.add(pitch=69, velocity=80, start_time=0.0, end_time=1.0)  # A4, 440 Hz
    ns.notes.add(pitch=76, velocity=80, start_time=1.0, end_time=1.5)  # E5, 659 Hz
    ns.total_time = 1.5
    path = audio.write_wav(audio.render(ns), str(tmp_path / "a.wav"))
    with wave.open(path) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, audio.SAMPLE_RATE)
        y = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32767
    assert 1.5 <= len(y) / audio.SAMPLE_RATE <= 1.8  # the notes, then a short release
    assert 0.5 < np.abs(y).max() <= 0.91

    def peak_hz(seg):
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
        return np.fft.rfftfreq(len(seg), 1 / audio.SAMPLE_RATE)[np.argmax(spec)]

    sr = audio.SAMPLE_RATE
    assert abs(peak_hz(y[int(0.1 * sr): int(0.9 * sr)]) - 440.0) < 5
    assert abs(peak_hz(y[int(1.05 * sr): int(1.45 * sr)]) - 659.3) < 8
