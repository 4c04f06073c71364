"""The evaluation's progress bars: the expected total of fits that stop early, and work read from disk
taken off a phase's total (the end-to-end checks that every phase of an evaluation ends at its total are in
tests/train/test_melody_run.py, test_classify_run.py and test_gan_melody_init.py)."""

from metamusic import progress


def test_fits_that_stop_early_revise_the_expected_steps():
    with progress.phase("fits", 1, enabled=False) as p:
        steps = progress.FitSteps(p, fits=4, most=100)
        assert steps.expected() == 400  # none finished: every fit may run its most steps
        p.advance(20)
        steps.finished(20)
        assert p.total == 20 + 3 * 20  # the unfinished expected to take what the finished took on average
        p.advance(100)
        steps.finished(100)
        assert p.total == 120 + 2 * 60
        p.advance(60 + 60)
        steps.finished(60)
        steps.finished(60)
        assert p.total == p.done == 240


def test_work_read_from_disk_is_taken_off_the_open_phase_and_units_go_to_the_innermost():
    with progress.phase("outer", 10, enabled=False) as outer:
        with progress.phase("tuning", 3 * progress.curve_units(100, 5), enabled=False) as p:
            assert progress.current() is p
            progress.skip(progress.curve_units(100, 5))  # one choice was read from disk
            progress.advance(2 * 600)
            assert p.total == p.done == 1200
        assert progress.current() is outer and outer.done == 0
        progress.advance(10)
        assert outer.done == outer.total
    assert progress.current() is None
    progress.advance(5)  # outside a phase: nothing to report to, and no error
    assert progress.curve_units(7, 0) == 7  # a curve of no steps is one query score per episode


def test_a_warm_up_that_carries_the_compiles_is_left_out_of_the_eta(capsys):
    clock = [0.0]
    with progress.phase("samples", 10, enabled=True, warmup=2) as p, \
            progress.phase("the same without a warm-up", 10, enabled=True) as q:
        for bar in (p.bar, q.bar):
            bar._time = lambda: clock[0]
            bar.start_t = bar.last_print_t = 0.0
        for seconds in (60.0, 40.0, 2.0, 2.0):  # two units of compiles, then two at their own pace
            clock[0] += seconds
            p.advance(1)
            q.advance(1)
        # the time left as the bar shows it: six units at 2 s each, against six at the whole phase's mean (26 s)
        assert str(p.bar).endswith("[01:44<00:12]")
        assert str(q.bar).endswith("[01:44<02:36]")
