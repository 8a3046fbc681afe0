"""Run a module with CPython's type version tags shifted by a given count.

CPython 3.11 caches attribute lookups on types in one table of 4,096 entries, indexed by the
type's version tag and the name's address. Two lookups that every request makes and that fall
on the same entry evict each other, and then each searches its class's MRO on every request.
Tags are handed out in the order types are first looked up, so which lookups collide follows
from everything a process imported and ran before: the same code started two ways can collide
in one and not the other. `python -m exporter serve` had aiohttp's `Request.method` and
`ABCMeta.__instancecheck__` on one entry; started from a two-line module it had no collision.

The serving benchmark starts every server through here with a random shift, the bare app as
much as the exporter, so that a ratio measures code and not one lucky or unlucky layout.

Usage: python -m benchmarks.layout SHIFT MODULE [ARG...]
"""

from __future__ import annotations

import runpy
import sys

# The type cache's size in CPython 3.11 (MCACHE_SIZE_EXP = 12): shifts beyond it repeat.
TYPE_CACHE_ENTRIES = 4096
MODULE = "benchmarks.layout"


def shift_version_tags(count: int) -> None:
    """Use up `count` version tags, so that every type tagged after this gets a tag `count`
    higher than it would have had."""

    class Throwaway:
        value = 0

    for n in range(count):
        Throwaway.value = n  # a change to a class withdraws its tag...
        _ = Throwaway.value  # ...and the next lookup on it hands out a new one


def main(argv: list[str]) -> None:
    shift, module, *arguments = argv
    print(f"type version tags shifted by {shift}", file=sys.stderr, flush=True)
    shift_version_tags(int(shift))
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
