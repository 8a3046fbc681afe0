"""The Dockerfile, checked without a Docker engine: what it copies exists and reaches the build
context, the image it describes runs unprivileged with a health check on /healthz, and the
wheel it installs builds from exactly those files and installs into a clean virtualenv.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from exporter import __version__
from exporter.settings import Settings
from tests.deploy.conftest import ROOT, run

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile: FROM's base and name, and each instruction with its text."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments may sit inside a continued instruction too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the last instruction ends with a line continuation"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = arguments.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m[1], m[0]), parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, base))
        elif not stages and keyword == "ARG":
            key, _, default = arguments.partition("=")
            global_args[key] = default
        else:
            assert stages, f"{keyword} before any FROM"
            stages[-1].instructions.append((keyword, arguments.strip()))
    return stages


def lineage(stages: list[Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, base first."""
    by_name = {stage.name: stage for stage in stages}
    chain = [by_name[name]]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def instructions(chain: list[Stage], keyword: str) -> list[str]:
    return [arguments for stage in chain for kw, arguments in stage.instructions if kw == keyword]


def context_copies(stages: list[Stage]) -> list[tuple[str, list[str], str]]:
    """(stage, sources, destination) of every COPY/ADD from the build context."""
    copies = []
    for stage in stages:
        for keyword, arguments in stage.instructions:
            if keyword not in ("COPY", "ADD"):
                continue
            words = shlex.split(arguments)
            flags = [word for word in words if word.startswith("--")]
            paths = [word for word in words if not word.startswith("--")]
            if any(flag.startswith("--from=") for flag in flags):
                continue  # from another stage, not from the context
            copies.append((stage.name, paths[:-1], paths[-1]))
    return copies


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` (or a folder holding it) out of the build context."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            return True
    return False


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    # The matcher above is exact for plain patterns; re-inclusions would need Docker's rules.
    assert not any(pattern.startswith("!") for pattern in patterns)
    return patterns


def test_every_copied_source_exists_and_is_in_the_build_context(
    stages: list[Stage], ignore_patterns: list[str]
) -> None:
    copies = context_copies(stages)
    assert copies, "the Dockerfile copies nothing from the context"
    for stage, sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"stage {stage}: COPY {source}: no such file"
            assert not dockerignored(source, ignore_patterns), f"{source} is in .dockerignore"


def test_default_target_is_the_exporter_unprivileged_with_a_healthcheck_on_healthz(
    stages: list[Stage],
) -> None:
    final = stages[-1]
    assert final.name == "exporter"
    chain = lineage(stages, final.name)
    users = instructions(chain, "USER")
    assert users, "the image runs as root"
    uid = users[-1].split(":")[0]
    # Numeric, so that Kubernetes' runAsNonRoot can verify it.
    assert uid.isdigit(), "USER must be a numeric uid"
    assert int(uid) != 0, "USER must not be root"
    [healthcheck] = instructions([final], "HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert instructions(chain, "EXPOSE") == [str(Settings().port)]
    [entrypoint] = instructions(chain, "ENTRYPOINT")
    assert entrypoint == '["summary-exporter"]'  # the console script of pyproject.toml


def test_final_image_has_no_build_stage_and_no_build_tools(stages: list[Stage]) -> None:
    chain = lineage(stages, "exporter")
    assert "build" not in [stage.name for stage in chain]
    assert chain[0].base.startswith("python:")
    assert "slim" in chain[0].base
    run_lines = " ".join(instructions(chain, "RUN"))
    assert "apt-get install" not in run_lines
    assert re.search(r"pip uninstall --yes pip setuptools wheel", run_lines)
    assert "--no-index" in run_lines  # only the wheels built in the build stage


def test_catalog_path_is_overridable_and_defaults_to_the_shipped_catalog(
    stages: list[Stage],
) -> None:
    chain = lineage(stages, "exporter")
    env = " ".join(instructions(chain, "ENV"))
    match = re.search(r"EXPORTER_CATALOG=(\S+)", env)
    assert match, "EXPORTER_CATALOG is not set in the image"
    destinations = {dest: sources for _, sources, dest in context_copies(chain)}
    assert destinations.get(match[1]) == ["exporter/catalog.yaml"]


def test_the_demo_gateway_target_runs_the_simulated_gateway(stages: list[Stage]) -> None:
    chain = lineage(stages, "demo-gateway")
    assert "runtime" in [stage.name for stage in chain]
    [entrypoint] = instructions(chain[-1:], "ENTRYPOINT")
    assert entrypoint == '["python", "-m", "demo.gateway"]'
    assert instructions(chain[-1:], "EXPOSE") == ["8000"]
    assert "/metrics" in instructions(chain[-1:], "HEALTHCHECK")[0]


def test_the_wheel_builds_from_the_copied_files_and_installs_in_a_clean_venv(
    stages: list[Stage], tmp_path: Path
) -> None:
    # The build stage's context, and nothing else, as the Dockerfile copies it.
    context = tmp_path / "context"
    for _, sources, destination in context_copies(lineage(stages, "build")):
        for source in sources:
            target = context / (destination if destination not in ("./", ".") else source)
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, target)
    wheels = tmp_path / "wheels"
    built = run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--wheel-dir",
        str(wheels),
        str(context),
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = wheels.glob(f"summary_exporter-{__version__}-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "exporter/catalog.yaml" in names
    assert "exporter/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "harness/", "benchmarks/", "demo/"))]

    venv = tmp_path / "venv"
    created = run(sys.executable, "-m", "venv", str(venv))
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    # As the runtime stage does: no index, only the wheels of the build stage.
    installed = run(
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        str(wheels),
        "summary-exporter",
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    version = run(str(venv / "bin" / "summary-exporter"), "--version", cwd=tmp_path)
    assert version.stdout.strip() == f"summary-exporter {__version__}", version.stderr
    rules = run(str(venv / "bin" / "summary-exporter"), "rules", cwd=tmp_path)
    assert rules.returncode == 0, rules.stderr
    assert "record: summary:http_total_requests" in rules.stdout  # the packaged catalog

    # The demo-gateway target adds only demo/ on top: its imports must be installed too.
    demo = tmp_path / "demo-gateway" / "demo"
    demo.mkdir(parents=True)
    for _, sources, _ in context_copies(lineage(stages, "demo-gateway")[-1:]):
        for source in sources:
            shutil.copy2(ROOT / source, demo / Path(source).name)
    gateway = run(str(python), "-c", "import demo.gateway", cwd=demo.parent)
    assert gateway.returncode == 0, gateway.stderr
