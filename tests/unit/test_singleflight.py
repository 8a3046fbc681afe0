"""The single-flight cache behind on-demand summaries and sparklines: one computation per key
at a time, results kept in bounds, and a bounded number of computations under way."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from exporter.errors import Busy
from exporter.singleflight import SingleFlightCache


class Computations:
    """Counts computations by key; each waits for `release` when one is given."""

    def __init__(self, release: asyncio.Event | None = None) -> None:
        self.keys: list[str] = []
        self._release = release

    def of(self, key: str) -> Callable[[], Awaitable[str]]:
        async def compute() -> str:
            self.keys.append(key)
            if self._release is not None:
                await self._release.wait()
            return f"value of {key}"

        return compute


def cache(**options: Any) -> SingleFlightCache[str, str]:
    defaults: dict[str, Any] = {"size": 2, "max_concurrent": 2, "what": "things"}
    return SingleFlightCache(**(defaults | options))


async def test_concurrent_requests_for_one_key_share_one_computation() -> None:
    release = asyncio.Event()
    computations, shared = Computations(release), cache()
    waiting = [asyncio.create_task(shared.get("a", computations.of("a"))) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == ["value of a"] * 10
    assert computations.keys == ["a"]


async def test_a_kept_value_is_answered_without_computing_again() -> None:
    computations, shared = Computations(), cache()
    await shared.get("a", computations.of("a"))
    assert await shared.get("a", computations.of("a")) == "value of a"
    assert computations.keys == ["a"]


async def test_beyond_its_size_the_least_recently_used_value_is_dropped() -> None:
    computations, shared = Computations(), cache(size=2)
    for key in ("a", "b", "a", "c", "a", "b"):
        await shared.get(key, computations.of(key))
    assert computations.keys == ["a", "b", "c", "b"]


async def test_beyond_its_concurrency_a_new_key_is_refused_but_a_running_one_is_joined() -> None:
    release = asyncio.Event()
    computations, shared = Computations(release), cache(max_concurrent=1)
    first = asyncio.create_task(shared.get("a", computations.of("a")))
    await asyncio.sleep(0)
    with pytest.raises(Busy, match="1 things are being computed; retry"):
        await shared.get("b", computations.of("b"))
    joined = asyncio.create_task(shared.get("a", computations.of("a")))
    release.set()
    assert await first == await joined == "value of a"
    assert computations.keys == ["a"]


async def test_a_value_kept_for_0_seconds_is_computed_again_next_time() -> None:
    computations, shared = Computations(), cache(keep=lambda value: 0)
    await shared.get("a", computations.of("a"))
    await shared.get("a", computations.of("a"))
    assert computations.keys == ["a", "a"]


async def test_a_value_expires_after_the_seconds_keep_gives_it() -> None:
    now = [100.0]
    computations = Computations()
    shared = cache(
        keep=lambda value: 15 if value == "value of a" else math.inf, clock=lambda: now[0]
    )
    await shared.get("a", computations.of("a"))
    now[0] += 14
    await shared.get("a", computations.of("a"))
    now[0] += 2
    await shared.get("a", computations.of("a"))
    assert computations.keys == ["a", "a"]


async def test_admit_may_refuse_a_new_computation_before_it_starts() -> None:
    def spent() -> None:
        raise Busy("budget spent", retry_after=7)

    computations, shared = Computations(), cache(admit=spent)
    with pytest.raises(Busy) as refused:
        await shared.get("a", computations.of("a"))
    assert refused.value.retry_after == 7
    assert computations.keys == []


async def test_a_client_going_away_does_not_cancel_the_computation_others_wait_for() -> None:
    release = asyncio.Event()
    computations, shared = Computations(release), cache()
    leaving = asyncio.create_task(shared.get("a", computations.of("a")))
    staying = asyncio.create_task(shared.get("a", computations.of("a")))
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    assert await staying == "value of a"
    assert computations.keys == ["a"]


async def test_a_failed_computation_fails_its_waiters_and_is_tried_again_next_time() -> None:
    attempts: list[int] = []

    async def failing() -> str:
        attempts.append(1)
        raise RuntimeError("upstream bug")

    shared = cache()
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await shared.get("a", failing)
    assert len(attempts) == 2
