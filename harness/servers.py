"""Child processes, and real Prometheus and VictoriaMetrics servers loaded with fixed samples.

Each server is a child process listening on 127.0.0.1 only, with its data, config and log in a
work directory given by the caller. Both servers receive the same samples rounded to whole
milliseconds, the resolution they both store, so a PromQL question has one expected answer.
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Self

INSTALL_HINT = "apt-get install -y prometheus victoria-metrics"

_READY_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0
_POLL_INTERVAL_S = 0.05
_PROBE_TIMEOUT_S = 2.0
_REQUEST_TIMEOUT_S = 30.0
_BACKFILL_TIMEOUT_S = 120.0
_LOG_TAIL_LINES = 40

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# Sample names each OpenMetrics family type owns. promtool 2.42 checks none of this and keeps
# no type in the TSDB; the bare name is allowed for counters because callers may key a counter
# family by its `_total` sample name, which promtool accepts.
_FAMILY_SUFFIXES: Mapping[str, tuple[str, ...]] = {
    "counter": ("_total", "_created", ""),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
_NO_METRIC_TYPES: Mapping[str, str] = MappingProxyType({})

# The servers listen on 127.0.0.1; an http_proxy from the environment must not reroute that.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerError(RuntimeError):
    """A server is not installed, did not start, or did not load its samples."""


@dataclass(frozen=True)
class Sample:
    """One point of one series."""

    name: str
    labels: Mapping[str, str]
    timestamp: float  # unix seconds
    value: float


def require_binary(name: str, install_hint: str = INSTALL_HINT) -> str:
    """Absolute path of an installed binary; ServerError, with how to install it, otherwise.

    An error, never a skip: a test that did not run against its real server must not look green.
    """
    found = shutil.which(name)
    if found is None:
        raise ServerError(f"{name} is not installed; install it with: {install_hint}")
    return os.path.abspath(found)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ChildProcess:
    """A child process with its output appended to a log file; stopped by its own PID only."""

    def __init__(
        self,
        argv: Sequence[str],
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.log = log
        self.argv = list(argv)
        self._env = None if env is None else dict(env)  # None: this process's environment
        self._cwd = cwd
        self._process = self._spawn()

    @property
    def pid(self) -> int:
        return self._process.pid

    def running(self) -> bool:
        return self._process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        _send(self._process, sig)

    def wait(self, timeout: float) -> int:
        """The exit status, once the process has ended within `timeout` seconds."""
        return self._process.wait(timeout=timeout)

    def stop(self) -> None:
        """Terminates the process and waits for it, killing it if it lingers; idempotent."""
        terminate(self._process)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # Appending keeps the log of a previous run of a restarted process.
        with self.log.open("ab") as out:
            return subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
            )


class ServerProcess(ChildProcess):
    """A server child process: started once it answers its readiness path; signals."""

    def __init__(
        self,
        argv: Sequence[str],
        port: int,
        log: Path,
        ready_path: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._ready_url = self.url + ready_path
        super().__init__(argv, log, env=env)

    def kill(self) -> None:
        """Kills the server without letting it shut down cleanly, and waits for it."""
        _send(self._process, signal.SIGKILL)
        self._process.wait(timeout=_STOP_TIMEOUT_S)

    def pause(self) -> None:
        """Freezes the server: connections are accepted by the kernel but never answered."""
        if not self.running():
            raise ServerError(f"{self.argv[0]} (pid {self.pid}) is not running")
        _send(self._process, signal.SIGSTOP)
        # SIGSTOP lands asynchronously; a test asserting a timeout right after must not race it.
        if not wait_for(lambda: _all_threads_stopped(self.pid), _STOP_TIMEOUT_S):
            raise ServerError(f"{self.argv[0]} (pid {self.pid}) did not stop on SIGSTOP")

    def resume(self) -> None:
        _send(self._process, signal.SIGCONT)

    def _spawn(self) -> subprocess.Popen[bytes]:
        process = super()._spawn()
        ready = wait_for(
            lambda: process.poll() is not None or http_get(self._ready_url)[0] == 200,
            _READY_TIMEOUT_S,
        )
        if ready and process.returncode is None:
            return process
        terminate(process)
        problem = (
            f"exited with status {process.returncode}"
            if ready
            else f"was not ready at {self._ready_url} after {_READY_TIMEOUT_S} s"
        )
        raise ServerError(f"{self.argv[0]} {problem}; end of {self.log}:\n{self.log_tail()}")


class PrometheusServer(ServerProcess):
    """Prometheus on a TSDB backfilled with the samples, logging every query it runs."""

    def __init__(self, argv: Sequence[str], port: int, workdir: Path, query_log: Path) -> None:
        self.query_log = query_log
        super().__init__(argv, port, workdir / "prometheus.log", "/-/ready")

    @classmethod
    def start(
        cls,
        samples: Sequence[Sample],
        workdir: Path,
        *,
        metric_types: Mapping[str, str] = _NO_METRIC_TYPES,
        scrape: Mapping[str, Sequence[str]] = MappingProxyType({}),
        rule_files: Sequence[Path] = (),
        out_of_order_window: str | None = None,
    ) -> PrometheusServer:
        """Backfills the samples with promtool and starts Prometheus on them.

        `metric_types` maps a metric family name (e.g. "http_requests" or
        "http_requests_total" for a counter) to counter, gauge, histogram or summary; every
        other name is written as its own family of type unknown. `scrape` maps a job name to
        the host:port targets Prometheus scrapes for it, every second. `rule_files` are
        evaluated every second (unless a group sets its own interval), at the current time:
        their results can be stored only after the newest backfilled sample, or, with
        `out_of_order_window` (a duration such as "2h"), among samples backfilled ahead of now,
        as out-of-order samples: then the data stays live while the rules run.
        """
        ordered = _ordered(samples)
        text = _openmetrics(ordered, metric_types)
        prometheus = require_binary("prometheus")
        promtool = require_binary("promtool")
        workdir.mkdir(parents=True, exist_ok=True)
        data_dir = workdir / "prometheus-data"
        # A second backfill into the same TSDB would overlap the first one's blocks.
        data_dir.mkdir()
        if ordered:
            openmetrics = workdir / "samples.om"
            openmetrics.write_text(text)
            _backfill(promtool, openmetrics, data_dir)
        query_log = workdir / "query.log"
        config = workdir / "prometheus.yml"
        # A scrape of one second, which may take all of it: a stopped target is down at once.
        scrape_configs = [
            {
                "job_name": job,
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "static_configs": [{"targets": list(targets)}],
            }
            for job, targets in scrape.items()
        ]
        settings: dict[str, Any] = {
            "global": {"query_log_file": str(query_log), "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": scrape_configs,
        }
        if out_of_order_window is not None:
            settings["storage"] = {"tsdb": {"out_of_order_time_window": out_of_order_window}}
        # JSON is YAML, and json.dumps quotes any path safely.
        config.write_text(json.dumps(settings))
        port = free_port()
        argv = [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            # Retention counts back from the newest block, so fixed past samples need a long one.
            "--storage.tsdb.retention.time=100y",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        return cls(argv, port, workdir, query_log)

    def logged(self) -> list[dict[str, Any]]:
        """The entries of the query log so far, oldest first: each query Prometheus ran, with
        its `params` and `stats`; a rule evaluation's also names its `ruleGroup`."""
        text = self.query_log.read_text() if self.query_log.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def restart(self) -> None:
        """Starts Prometheus again on the same port and TSDB, after stopping it if it runs."""
        self.stop()
        self._process = self._spawn()


class VictoriaMetricsServer(ServerProcess):
    """Single-node VictoriaMetrics holding the samples."""

    @classmethod
    def start(cls, samples: Sequence[Sample], workdir: Path) -> VictoriaMetricsServer:
        """Starts VictoriaMetrics, imports the samples and waits until queries see them all."""
        ordered = _ordered(samples)
        binary = require_binary("victoria-metrics")
        workdir.mkdir(parents=True, exist_ok=True)
        storage = workdir / "vm"
        storage.mkdir()
        port = free_port()
        argv = [
            binary,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={storage}",
            # Without it samples older than a month are dropped on import, without an error.
            "-retentionPeriod=100y",
            # Without it the last 30 s before the query time are hidden.
            "-search.latencyOffset=0s",
            # Samples arrive after start: an answer cached while only some were visible would
            # outlive the import.
            "-search.disableCache",
        ]
        server = cls(argv, port, workdir / "victoria-metrics.log", "/health")
        try:
            if ordered:
                server._load(ordered)
        except BaseException:
            server.stop()
            raise
        return server

    def _load(self, samples: Sequence[Sample]) -> None:
        lines = "".join(
            f"{_series(s.name, s.labels)} {_value(s.value)} {_millis(s.timestamp)}\n"
            for s in samples
        )
        _request(f"{self.url}/api/v1/import/prometheus", lines.encode())
        _request(f"{self.url}/internal/force_flush")
        # VictoriaMetrics 1.79 drops NaN samples on import.
        expected = sum(not math.isnan(s.value) for s in samples)
        first = min(_millis(s.timestamp) for s in samples)
        last = max(_millis(s.timestamp) for s in samples)
        # The range is open on the left: one more millisecond takes in the first sample.
        question = urllib.parse.urlencode(
            {
                "query": f'sum(count_over_time({{__name__=~".+"}}[{last - first + 1}ms]))',
                "time": repr(last / 1000),
            }
        )
        visible = 0

        def all_visible() -> bool:
            nonlocal visible
            body = json.loads(_request(f"{self.url}/api/v1/query?{question}"))
            result = body["data"]["result"]
            visible = int(result[0]["value"][1]) if result else 0
            return visible == expected

        if expected and not wait_for(all_visible, _READY_TIMEOUT_S):
            raise ServerError(
                f"VictoriaMetrics shows {visible} of {expected} imported samples after "
                f"{_READY_TIMEOUT_S} s; end of {self.log}:\n{self.log_tail()}"
            )


class VmalertProcess(ServerProcess):
    """vmalert evaluating recording rules every second against VictoriaMetrics, and writing
    their results back into it."""

    @classmethod
    def start(
        cls, victoria_metrics: VictoriaMetricsServer, rule_files: Sequence[Path], workdir: Path
    ) -> VmalertProcess:
        binary = require_binary("vmalert")
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [
            binary,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-datasource.url={victoria_metrics.url}",
            f"-remoteWrite.url={victoria_metrics.url}",
            *(f"-rule={path}" for path in rule_files),
            "-evaluationInterval=1s",
            # Written within a fraction of a second, not after the default 5 s.
            "-remoteWrite.flushInterval=100ms",
        ]
        return cls(argv, port, workdir / "vmalert.log", "/health")


class ScrapeTarget(ServerProcess):
    """A program serving Prometheus metrics on 127.0.0.1 (`python -m MODULE --port N`),
    ready once /metrics answers; pause() and resume() stop and restart it."""

    @classmethod
    def start(cls, module: str, workdir: Path) -> ScrapeTarget:
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [sys.executable, "-m", module, "--port", str(port)]
        return cls(argv, port, workdir / "target.log", "/metrics")

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")


class ExporterProcess(ServerProcess):
    """`python -m exporter serve` as a user starts it, on 127.0.0.1, with given variables."""

    @classmethod
    def start(
        cls, workdir: Path, variables: Mapping[str, str], *, launcher: Sequence[str] = ()
    ) -> ExporterProcess:
        """Starts the exporter with this environment less any EXPORTER_*, APP_ENV, TESTING,
        plus `variables`; ready once /readyz answers (it never waits for the upstream).

        `launcher` is a command that runs it, e.g. ("prlimit", "--nofile=256") for a lower
        limit of open files; it must end by executing the exporter in its own process."""
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("EXPORTER_") and key not in ("APP_ENV", "TESTING")
        }
        env = inherited | {"EXPORTER_HOST": "127.0.0.1", "EXPORTER_PORT": str(port)}
        argv = [*launcher, sys.executable, "-m", "exporter", "serve"]
        return cls(argv, port, workdir / "exporter.log", "/readyz", env | dict(variables))

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _send(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # Popen signals its own PID, and not once it has reaped it, so never a recycled PID.
    process.send_signal(sig)


def terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (and SIGCONT, for a paused one), then SIGKILL if it lingers; idempotent."""
    if process.poll() is not None:
        return
    _send(process, signal.SIGTERM)
    # A paused server acts on SIGTERM only once it runs again.
    _send(process, signal.SIGCONT)
    try:
        process.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _send(process, signal.SIGKILL)
        process.wait(timeout=_STOP_TIMEOUT_S)


def _all_threads_stopped(pid: int) -> bool:
    try:
        # The state follows the parenthesised command name, which may itself contain spaces.
        states = [
            (task / "stat").read_text().rpartition(")")[2].split()[0]
            for task in Path(f"/proc/{pid}/task").iterdir()
        ]
    except FileNotFoundError:  # a thread ended while being listed
        return False
    return all(state == "T" for state in states)


def wait_for(
    condition: Callable[[], bool], timeout: float, interval: float = _POLL_INTERVAL_S
) -> bool:
    """Polls `condition` until it holds (True) or `timeout` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    for _ in range(math.ceil(timeout / interval) + 1):
        if condition():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    return False


def http_get(url: str, timeout: float = _PROBE_TIMEOUT_S) -> tuple[int, bytes]:
    """Status and body of a GET; (0, b"") when nothing answers."""
    try:
        with _HTTP.open(url, timeout=timeout) as response:
            status: int = response.status
            body: bytes = response.read()
            return status, body
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, http.client.HTTPException):
        return 0, b""


def memory_kib(pid: int, key: str = "VmRSS") -> int:
    """VmRSS (resident now) or VmHWM (the peak since start) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise ServerError(f"no {key} for process {pid}")


def _request(url: str, data: bytes | None = None) -> bytes:
    try:
        with _HTTP.open(url, data=data, timeout=_REQUEST_TIMEOUT_S) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as error:
        raise ServerError(f"{url}: HTTP {error.code}: {error.read()!r}") from error


def _backfill(promtool: str, openmetrics: Path, data_dir: Path) -> None:
    # Blocks written straight into the TSDB directory are loaded when Prometheus starts.
    done = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(data_dir)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=_BACKFILL_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise ServerError(
            f"promtool failed on {openmetrics} with status {done.returncode}:\n"
            f"{done.stdout}{done.stderr}"
        )


def _ordered(samples: Sequence[Sample]) -> list[Sample]:
    """The samples grouped by series, each series in time order.

    promtool silently drops samples out of time order and the second of two at the same
    millisecond, so those are sorted here and rejected, respectively.
    """
    for sample in samples:
        if not _METRIC_NAME.fullmatch(sample.name):
            raise ValueError(f"invalid metric name {sample.name!r}")
        for label in sample.labels:
            # Names starting with __ are reserved for the servers, like __name__.
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r} on {sample.name}")
        if not math.isfinite(sample.timestamp):
            raise ValueError(f"invalid timestamp {sample.timestamp!r} on {sample.name}")
    ordered = sorted(samples, key=_point_key)
    for before, after in itertools.pairwise(ordered):
        if _point_key(before) == _point_key(after):
            raise ValueError(
                f"two samples of {_series(after.name, after.labels)} at {after.timestamp}"
            )
    return ordered


def _point_key(sample: Sample) -> tuple[str, tuple[tuple[str, str], ...], int]:
    return sample.name, tuple(sorted(sample.labels.items())), _millis(sample.timestamp)


def _openmetrics(samples: Sequence[Sample], metric_types: Mapping[str, str]) -> str:
    for family, kind in metric_types.items():
        if kind not in _FAMILY_SUFFIXES:
            raise ValueError(
                f"metric type {kind!r} of {family} is not one of {sorted(_FAMILY_SUFFIXES)}"
            )
    # OpenMetrics wants each family in one block under its TYPE line; `samples` are ordered
    # by series, and dicts keep that order within each family.
    families: dict[tuple[str, str], list[str]] = {}
    for s in samples:
        # promtool reads seconds and truncates them to milliseconds, which a decimal of whole
        # milliseconds survives.
        line = f"{_series(s.name, s.labels)} {_value(s.value)} {_millis(s.timestamp) / 1000!r}"
        families.setdefault(_family(s.name, metric_types), []).append(line)
    lines: list[str] = []
    for (family, kind), body in families.items():
        lines.append(f"# TYPE {family} {kind}")
        lines.extend(body)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _family(name: str, metric_types: Mapping[str, str]) -> tuple[str, str]:
    owners = [
        (family, kind)
        for family, kind in metric_types.items()
        if any(name == family + suffix for suffix in _FAMILY_SUFFIXES[kind])
    ]
    if len(owners) > 1:
        raise ValueError(f"{name} belongs to several families of metric_types: {owners}")
    return owners[0] if owners else (name, "unknown")


def _series(name: str, labels: Mapping[str, str]) -> str:
    if not labels:
        return name
    pairs = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items()))
    return f"{name}{{{pairs}}}"


def _escape(label_value: str) -> str:
    # The same escapes in OpenMetrics and in the Prometheus text format; backslash goes first.
    return label_value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _millis(timestamp: float) -> int:
    return round(timestamp * 1000)
