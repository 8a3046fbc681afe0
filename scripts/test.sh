#!/usr/bin/env bash
# The whole test suite on a fresh Debian/Ubuntu machine: installs what is missing, then runs
# lint, type checks and every test (integration tests against real Prometheus and
# VictoriaMetrics servers), with coverage.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Servers for the integration tests; docker-compose (v1, Debian) validates docker-compose.yml
# offline in tests/deploy (no Docker engine needed). kubectl, which renders the kustomize base
# there, comes with the machine image.
packages=()
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || packages+=(prometheus)
command -v victoria-metrics >/dev/null || packages+=(victoria-metrics)
command -v docker-compose >/dev/null || packages+=(docker-compose)
# Headless Chromium renders the status page in tests/integration/test_status_page_browser.py.
command -v chromium >/dev/null || packages+=(chromium)
# ss reads the listen backlog in tests/unit/test_cli.py.
command -v ss >/dev/null || packages+=(iproute2)
# prlimit lowers the exporter's limit of open files in tests/integration/test_connections.py.
command -v prlimit >/dev/null || packages+=(util-linux)
if ((${#packages[@]})); then
  echo "== installing ${packages[*]} (Debian packages)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  python3 -m venv .venv
fi
echo "== installing the package and its test dependencies"
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest --cov=exporter --cov-report=term "$@"
