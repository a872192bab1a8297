"""Where a call's time goes, and what a busy machine may and may not do to a model: the bounds of
a call on a model that reports its serving (queue, serving, progress), the width of the embedded
model's batches decided from what it measures, and the breaker that cools down broken models,
never slow local ones. Pure logic, driven by the times it is given."""

from __future__ import annotations

import time

import pytest

from orchestrator.errors import ProviderTimeout, ProviderUnavailable
from orchestrator.models._breaker import Breaker
from orchestrator.models._serving import Patience, Serving, patience, serving
from orchestrator.models.failure import classify
from orchestrator.providers._width import SAMPLES, Width


def test_time_in_the_queue_counts_only_against_the_queue_bound() -> None:
    call = Serving(timeout_s=10, patience=Patience(stall_s=50, queue_s=100), queued_at=1000.0)
    assert call.overdue(now=1050.0) is None  # 50 s waiting: five times timeout_s, not out of bounds
    assert "queue_wait_s" in (call.overdue(now=1101.0) or "")
    call.start(at=1050.0)
    assert call.overdue(now=1059.0) is None  # served 9 s of its 10
    assert "timeout_s" in (call.overdue(now=1061.0) or "")


def test_a_call_without_progress_for_stall_s_is_out_of_bounds() -> None:
    call = Serving(timeout_s=1000, patience=Patience(stall_s=5, queue_s=100), queued_at=0.0)
    call.start(at=10.0)
    call.progress(3, at=14.0)
    assert call.overdue(now=18.0) is None
    assert "stall_s" in (call.overdue(now=20.0) or "")
    assert call.phase == "generating" and call.tokens == 3


def test_a_timed_out_call_says_where_its_time_went() -> None:
    call = Serving(timeout_s=2, queued_at=time.time() - 30, reported=True)
    call.start(at=call.queued_at + 25)
    error = call.timed_out("local/smollm2", "served for 5 s (limits.timeout_s 2)", local=True)
    assert isinstance(error, ProviderTimeout) and error.kind == "timeout" and error.retryable
    assert error.phase == "prompt" and error.tokens == 0 and not error.breaks
    assert 24 < error.queued_s < 26 and error.served_s >= 4
    assert "waited 25.0 s, then served" in error.message
    assert classify(error, "local/smollm2") is error


def test_the_run_s_bounds_reach_the_calls_made_inside_them() -> None:
    with patience(7.0, 70.0), serving(3.0) as call:
        assert call.patience == Patience(7.0, 70.0) and call.timeout_s == 3.0
    with serving(3.0) as outside:
        assert outside.patience == Patience()


@pytest.mark.parametrize(("local", "opened"), [(True, False), (False, True)])
def test_timeouts_cool_down_a_remote_model_never_a_local_one(local: bool, opened: bool) -> None:
    breaker = Breaker(threshold=3)
    for _ in range(5):
        breaker.failure("p", "p/m", ProviderTimeout("p/m: timed out", model="p/m", local=local))
    assert (breaker.why_open("p", "p/m") is not None) == opened


def test_a_local_model_that_is_broken_still_cools_down() -> None:
    breaker = Breaker(threshold=3)
    for _ in range(3):
        breaker.failure("local", "local/smollm2", ProviderUnavailable("worker lost", model="local/smollm2"))
    assert breaker.why_open("local", "local/smollm2") is not None


def test_a_worker_killed_for_being_slow_to_stop_a_call_does_not_cool_the_model_down() -> None:
    from orchestrator.providers._client import ModelWorkerLost

    breaker = Breaker(threshold=3)
    slow = ModelWorkerLost("the worker was stopped: it did not stop a cancelled call within 5.0 s", breaks=False)
    for _ in range(3):
        error = classify(slow, "local/smollm2")
        assert isinstance(error, ProviderUnavailable) and error.retryable and not error.breaks
        breaker.failure("local", "local/smollm2", error)
    assert breaker.why_open("local", "local/smollm2") is None
    assert classify(ModelWorkerLost("exited with code -9"), "local/smollm2").breaks  # a crash still counts


def measured(width: Width, figures: dict[int, float], threads: int = 1) -> None:
    for size, seconds in figures.items():
        for _ in range(SAMPLES):
            width.record(threads, size, seconds)


def test_calls_are_decoded_one_at_a_time_until_batching_is_measured_to_pay() -> None:
    width = Width(4)
    assert width.choose(demand=4) == 1  # nothing measured yet
    measured(width, {1: 0.10})
    assert width.choose(demand=4) == 2  # not measured lately: tried while calls wait
    assert width.choose(demand=1) == 1  # nobody to batch with
    measured(width, {2: 0.19})  # 2 calls in 0.19 s: 10.5 tokens/s against 10
    assert width.choose(demand=4) == 1, "a gain under GAIN does not pay for slower calls"


def test_a_batch_that_pays_is_kept_while_each_call_keeps_half_its_speed() -> None:
    width = Width(4)
    measured(width, {1: 0.10, 2: 0.12, 3: 0.14})
    assert width.choose(demand=4) == 4  # 2 and 3 pay; 4 is tried
    measured(width, {4: 0.90})  # each of 4 calls at 1/9 of its speed alone: no
    assert width.choose(demand=4) == 3
    fixed = Width(4, adapt=False)
    assert fixed.choose(demand=1) == 4
