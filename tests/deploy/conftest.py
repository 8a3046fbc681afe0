"""Helpers for the deploy artifacts' tests: the repository root and the tools they need."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.servers import require_binary

# The session's real Prometheus loaded with the gateway dataset (tests/integration).
from tests.integration.conftest import (  # noqa: F401
    environments_prometheus,
    live_prometheus,
    prometheus,
)

ROOT = Path(__file__).resolve().parents[2]

# How scripts/test.sh provides each tool on a fresh Debian machine.
INSTALL_HINTS = {
    "docker-compose": "apt-get install -y --no-install-recommends docker-compose",
    "promtool": "apt-get install -y --no-install-recommends prometheus",
    "kubectl": "kubectl (1.27 or newer, for `kubectl kustomize`) from the machine image",
}


def require_tool(name: str) -> str:
    """Absolute path of a command-line tool; fails the test when missing."""
    return require_binary(name, INSTALL_HINTS.get(name, "install it"))


def run(*argv: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs a command without input; the caller checks the exit status."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
