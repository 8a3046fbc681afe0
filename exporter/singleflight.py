"""Results computed on request, each once however many ask for it at once, kept in bounds.

On-demand summaries and the status page's sparklines both use it: a request that names a new
window or instant starts one computation; every request for the same key meanwhile waits for
that one; the result is kept for the next requests, the least recently used dropped beyond
`size`; at most `max_concurrent` computations run at a time. So Prometheus sees a bounded,
known load however many clients there are.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from exporter.errors import Busy

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _keep_forever(_: object) -> float:
    return math.inf


class SingleFlightCache(Generic[K, V]):
    """Values by key: computed once at a time per key, cached, bounded in entries and in work.

    `keep` says how many seconds a computed value stays valid (0: not kept at all; by default
    until it is evicted). `admit` runs before a computation starts and may raise Busy to refuse
    it, e.g. for a budget of computations a minute.
    """

    def __init__(
        self,
        *,
        size: int,
        max_concurrent: int,
        what: str,
        keep: Callable[[V], float] = _keep_forever,
        admit: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size = size
        self._max_concurrent = max_concurrent
        self._what = what
        self._keep = keep
        self._admit = admit
        self._clock = clock
        self._values: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._in_flight: dict[K, asyncio.Task[V]] = {}

    async def get(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        """The value for `key`: cached, or the computation under way, or a new one.

        Raises Busy when `max_concurrent` computations of other keys are under way.
        """
        kept = self._values.get(key)
        if kept is not None and kept[1] > self._clock():
            self._values.move_to_end(key)
            return kept[0]
        task = self._in_flight.get(key)
        if task is None:
            if len(self._in_flight) >= self._max_concurrent:
                raise Busy(f"{self._max_concurrent} {self._what} are being computed; retry")
            self._admit()
            task = asyncio.create_task(self._compute(key, compute))
            self._in_flight[key] = task
        # shield: one client going away must not cancel the computation others wait for.
        return await asyncio.shield(task)

    def clear(self) -> None:
        """Drops every value kept; computations under way go on, and keep theirs."""
        self._values.clear()

    async def _compute(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await compute()
        finally:
            del self._in_flight[key]
        lifetime = self._keep(value)
        if lifetime > 0:
            self._values[key] = (value, self._clock() + lifetime)
            self._values.move_to_end(key)
            while len(self._values) > self._size:
                self._values.popitem(last=False)
        else:
            self._values.pop(key, None)
        return value
