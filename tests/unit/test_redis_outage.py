"""A Redis outage is logged once when it starts and once when it ends (``RedisOutage``)."""

from __future__ import annotations

import logging
from typing import List

import pytest
from redis.exceptions import ConnectionError

from addons.errors import StoreUnavailable
from addons.stores.redis.client import PoolBusy
from addons.stores.redis.outage import RedisOutage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def outage_lines(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.name == "addons.stores.redis.outage"]


def fail(outage: RedisOutage, part: str = "the user states") -> None:
    with pytest.raises(StoreUnavailable, match=f"{part}' Redis did not answer: refused"):
        with outage.call(part):
            raise ConnectionError("refused")


def test_many_failed_calls_then_a_success_log_one_start_and_one_end_with_duration(caplog):
    caplog.set_level(logging.INFO)
    clock = Clock()
    outage = RedisOutage(clock=clock)
    with outage.call("the user states"):
        pass
    assert not outage.down and outage_lines(caplog) == []
    fail(outage)
    for part in ("the toast streams", "the chat sessions", "the user states"):
        clock.now += 1.0
        fail(outage, part)
    assert outage.down
    clock.now += 2.5
    with outage.call("the toast streams"):
        pass
    assert not outage.down
    assert outage_lines(caplog) == [
        "Redis unreachable (the user states: refused); the copilot answers 503 until it is back",
        "Redis is back after 5.5 s unreachable (4 calls failed meanwhile)",
    ]


def test_a_call_that_started_before_the_outage_does_not_end_it(caplog):
    clock = Clock()
    outage = RedisOutage(clock=clock)
    in_flight = outage.started()
    clock.now += 0.1
    outage.failed("the offer fan-out", ConnectionError("reset"))
    outage.answered(in_flight)  # answered just before Redis went: says nothing about now
    assert outage.down
    clock.now += 1.0
    outage.answered(outage.started())
    assert not outage.down
    assert len(outage_lines(caplog)) == 2


def test_other_errors_pass_through_and_are_no_outage(caplog):
    outage = RedisOutage(clock=Clock())
    with pytest.raises(ValueError):
        with outage.call("the user states"):
            raise ValueError("a bug, not an outage")
    assert not outage.down and outage_lines(caplog) == []


def test_a_second_outage_is_logged_again(caplog):
    clock = Clock()
    outage = RedisOutage(clock=clock)
    for _ in range(2):
        fail(outage)
        clock.now += 1.0
        with outage.call("the user states"):
            pass
    assert [line.split(" (")[0] for line in outage_lines(caplog)] == [
        "Redis unreachable", "Redis is back after 1.0 s unreachable", "Redis unreachable", "Redis is back after 1.0 s unreachable",
    ]


def test_a_busy_pool_is_a_503_but_no_outage(caplog):
    outage = RedisOutage(clock=Clock())
    with pytest.raises(StoreUnavailable, match="connections are busy"):
        with outage.call("the toast streams"):
            raise PoolBusy("all 64 connections to Redis busy for 2 s")
    assert not outage.down and outage_lines(caplog) == []
