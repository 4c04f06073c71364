"""The bar-position channel: each event's position in its bar from the time signatures (3/4, 6/8,
meter changes, pickups), aligned with the tokens, cached, and left out of MIDI decoding."""

import numpy as np

from metamusic.data import files, melody
import synth

CFG = melody.EncodingConfig()  # 4 steps per quarter


def _seq(notes, signatures):
    """notes: (pitch, start_quarter, end_quarter); signatures: (time_quarter, numerator, denominator)."""
    from note_seq.protobuf import music_pb2

    ns = music_pb2.NoteSequence()
    ns.tempos.add(qpm=60.0)  # one second per quarter
    for t, num, den in signatures:
        ns.time_signatures.add(time=float(t), numerator=num, denominator=den)
    for p, a, b in notes:
        ns.notes.add(pitch=p, start_time=float(a), end_time=float(b), velocity=80)
    ns.total_time = max(b for _, _, b in notes)
    return ns


def _eighths(n, start=0.0):
    return [(60 + i % 12, start + 0.5 * i, start + 0.5 * i + 0.5) for i in range(n)]


def test_three_four_counts_twelve_steps_per_bar():
    ev, pos = melody.extract_melody(_seq(_eighths(24), [(0, 3, 4)]), CFG)
    assert len(pos) == len(ev) == 48  # 4 bars of 12 sixteenth steps
    assert list(pos[:14]) == list(range(12)) + [0, 1]
    assert np.flatnonzero(pos == 0).tolist() == [0, 12, 24, 36]


def test_six_eight_and_a_meter_change_restart_at_the_bar_line():
    # 2 bars of 6/8 (3 quarters each = 12 steps), then 2/4 from quarter 6 (8 steps per bar)
    notes = _eighths(12) + _eighths(8, start=6.0)
    ev, pos = melody.extract_melody(_seq(notes, [(0, 6, 8), (6, 2, 4)]), CFG)
    assert len(ev) == 24 + 16
    assert list(pos[:24]) == list(range(12)) * 2
    assert list(pos[24:]) == list(range(8)) * 2  # the new meter counts from its own bar line


def test_pickup_starts_the_count_before_the_downbeat():
    ev, pos = melody.extract_melody(_seq(_eighths(17), [(0, 4, 4)]), CFG, pickup_quarters=0.5)
    assert list(pos[:4]) == [14, 15, 0, 1]  # an eighth-note pickup: the downbeat is the third step
    ev0, _ = melody.extract_melody(_seq(_eighths(17), [(0, 4, 4)]), CFG)
    assert np.array_equal(ev, ev0)  # the tokens do not change, only the positions


def test_abc_pickup_and_meter_through_the_reader(tmp_path):
    path = tmp_path / "book.abc"
    path.write_text("X:1\nT:Jig with a pickup\nM:6/8\nL:1/8\nK:G\nD|GAB cde|dcB AGF|GAB cde|dBG G2|]\n"
                    "X:2\nT:Waltz\nM:3/4\nL:1/8\nK:G\nG2 A2 B2|c2 B2 A2|G2 A2 B2|c6|]\n")
    recs = [r for r in files.tune_records(str(path), CFG) if r[0] == "ok"]
    assert len(recs) == 2
    (_, tok1, _, meta1, pos1), (_, tok2, _, _, pos2) = recs
    assert meta1["pickup"] == 0.5 and len(pos1) == len(tok1) and pos1[0] == melody.NO_POS
    assert list(pos1[1:4]) == [10, 11, 0]  # D is the last eighth of a 6/8 bar, G the downbeat
    assert tok1[3] == 2 + 67 - CFG.min_note  # G4 on the downbeat
    assert list(pos2[1:14]) == list(range(12)) + [0]


def test_generation_positions_follow_the_support_meter():
    waltz = melody.meter_positions(50, 12)
    assert melody.steps_per_bar_of(waltz) == 12
    assert waltz[0] == melody.NO_POS and list(waltz[1:15]) == list(range(12)) + [0, 1]
    from metamusic.experiments.melody import generated_positions

    g = generated_positions(waltz[1:], 1, 20)  # no prime: from a downbeat
    assert list(g[1:14]) == list(range(12)) + [0]
    primed = generated_positions(waltz, 5, 20)  # BOS + 4 steps, then counting on
    assert list(primed[:8]) == [melody.NO_POS, 0, 1, 2, 3, 4, 5, 6]


def test_decoding_ignores_positions():
    ev, pos = melody.extract_melody(_seq(_eighths(24), [(0, 3, 4)]), CFG)
    tok = melody.events_to_tokens(ev, CFG)
    assert np.array_equal(melody.tokens_to_events(tok, CFG), ev)


def test_windows_and_tiles_carry_positions():
    tunes = [np.arange(2, 12), np.arange(2, 5)]
    pos = [np.concatenate([[melody.NO_POS], np.arange(9) % 6]), np.array([melody.NO_POS, 0, 1])]
    tok, mask, p = files.tiles(tunes, 4, 38, pos)
    assert list(p[0]) == [melody.NO_POS, 0, 1, 2] and list(p[1]) == [2, 3, 4, 5]
    assert (p[mask == 0] == melody.NO_POS).all()
    tok, mask, p = files.windows(tunes, 6, 38)
    assert (p == melody.NO_POS).all()  # positions not given


def test_corpus_windows_align_tokens_and_positions():
    from metamusic.data import TaskSampler

    corpus = synth.token_corpus(n_styles=4, n_tunes=10, length=40)
    t = TaskSampler(corpus, corpus.styles, shots=2, queries=2, length=16).sample(np.random.default_rng(0), 3)
    assert t.support_pos.shape == t.support.shape
    bos = t.support == corpus.enc.bos
    assert (t.support_pos[bos] == melody.NO_POS).all()
    real = (t.support_mask > 0) & ~bos
    assert (t.support_pos[real] < 16).all()
    # consecutive real steps count up by one modulo the 16-step bar
    d = (t.support_pos[..., 1:] - t.support_pos[..., :-1]) % 16
    both = real[..., 1:] & real[..., :-1]
    assert (d[both] == 1).all()
