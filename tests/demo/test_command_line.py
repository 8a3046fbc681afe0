"""`python -m demo.gateway`'s arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_an_incident_longer_than_its_period_is_refused_with_usage_exit_status() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo.gateway", "--incident-every", "60", "--incident-length", "90"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--incident-every 60, --incident-length 90" in result.stderr
    assert "Traceback" not in result.stderr
