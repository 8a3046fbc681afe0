"""`summary-exporter serve` on uvloop's event loop, to measure uvloop without changing exporter/.

Not the exporter's loop: it takes a tenth to a fifth less CPU per request, but with 1,000
connections saturating the server it times requests out. Those timeouts are not accept-queue
drops (no listen overflows): `ss` showed hundreds of accepted sockets holding an unread
request for over a second while others were served, the unfairness reported in
MagicStack/uvloop#123 and #631.

Usage: python -m benchmarks.uvloop_serve serve (settings from EXPORTER_* as usual)
"""

from __future__ import annotations

import asyncio
import importlib
import sys

from exporter.cli import main

if __name__ == "__main__":
    # web.run_app makes its loop with asyncio.new_event_loop(), which follows the policy.
    # Imported by name: uvloop is optional, measured only where it is installed.
    asyncio.set_event_loop_policy(importlib.import_module("uvloop").EventLoopPolicy())
    raise SystemExit(main(sys.argv[1:]))
