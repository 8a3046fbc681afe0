"""`scripts/demo.sh` (what `make demo` runs), started and stopped as a user would."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from harness.servers import free_port, require_binary, wait_for

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 90.0  # three processes, each given DEMO_STARTUP_TIMEOUT
STOP_TIMEOUT_S = 30.0


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_stops_all_three_quietly_with_status_0(tmp_path: Path) -> None:
    require_binary("prometheus")
    ports = {name: free_port() for name in ("GATEWAY", "PROMETHEUS", "EXPORTER")}
    demo_dir = tmp_path / "demo"
    environment = {
        **os.environ,
        **{f"DEMO_{name}_PORT": str(port) for name, port in ports.items()},
        "DEMO_VENV": sys.prefix,  # the virtualenv running these tests holds summary-exporter
        "DEMO_DIR": str(demo_dir),
        "DEMO_STARTUP_TIMEOUT": "20",
    }
    output = tmp_path / "demo.out"
    with output.open("wb") as out:
        # Its own process group, as a terminal gives a foreground job.
        demo = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "demo.sh")],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=tmp_path,
            start_new_session=True,
        )
    try:
        started = wait_for(
            lambda: demo.poll() is not None or "Press Ctrl-C" in output.read_text(), READY_TIMEOUT_S
        )
        assert started, output.read_text()
        assert demo.poll() is None, output.read_text()
        banner = output.read_text()
        exporter = f"http://127.0.0.1:{ports['EXPORTER']}"
        assert re.search(rf"status page +{exporter}/$", banner, re.MULTILINE)
        assert re.search(rf"health +{exporter}/health$", banner, re.MULTILINE)
        assert f"summary-exporter check --url {exporter}" in banner

        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        status = demo.wait(timeout=STOP_TIMEOUT_S)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGTERM)  # the script stops its three on TERM too
            demo.wait(timeout=STOP_TIMEOUT_S)

    text = output.read_text()
    assert status == 0, text
    logs = {log.name: log.read_text(errors="replace") for log in demo_dir.glob("*.log")}
    assert {"gateway.log", "prometheus.log", "exporter.log"} <= logs.keys()
    assert [name for name, log in {"output": text, **logs}.items() if "Traceback" in log] == []
    assert [name for name, port in ports.items() if listening(port)] == []
