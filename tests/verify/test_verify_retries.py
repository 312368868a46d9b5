"""The retry loop: attempts until a check passes, never past the deadline."""

from __future__ import annotations

import argparse

import pytest

from infra.ops.verify import Check, Deadline, Result, _positive, run_check


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_check_is_retried_until_it_passes():
    clock = FakeClock()
    outcomes = iter([Result(False, "starting"), Result(False, "starting"), Result(True, "up")])
    result = run_check(Check("x", lambda: next(outcomes)), Deadline(60, 5, clock), clock.sleep)
    assert result == Result(True, "up")
    assert clock.sleeps == [5, 5]


def test_a_failing_check_stops_at_the_deadline_with_its_last_failure():
    clock = FakeClock()
    attempts = []

    def attempt() -> Result:
        attempts.append(clock.now)
        raise ConnectionError("refused")

    result = run_check(Check("x", attempt), Deadline(12, 5, clock), clock.sleep)
    assert result == Result(False, "ConnectionError: refused")
    assert attempts == [0, 5, 10, 12]  # the last wait is cut to the deadline
    assert clock.now == 12


def test_after_the_deadline_a_check_runs_once():
    clock = FakeClock()
    deadline = Deadline(1, 5, clock)
    clock.now = 2
    calls = []
    run_check(Check("x", lambda: calls.append(1) or Result(False, "down")), deadline, clock.sleep)
    assert calls == [1]
    assert clock.sleeps == []


@pytest.mark.parametrize("text", ["0", "-1", "inf", "nan"])
def test_deadline_and_interval_must_be_finite_and_positive(text):
    with pytest.raises(argparse.ArgumentTypeError):
        _positive(text)
