# syntax=docker/dockerfile:1
# summary-exporter container images.
#
#   docker build -t summary-exporter:0.1.0 .                    # the exporter (default target)
#   docker build --target demo-gateway -t summary-exporter-demo-gateway:0.1.0 .
#
# The exporter image runs `summary-exporter serve` as an unprivileged user (uid 10001) on port
# 9199, with the built-in catalog at /etc/summary-exporter/catalog.yaml: mount your own file
# there, or point EXPORTER_CATALOG at another path. Any other command of the CLI works too:
#   docker run --rm summary-exporter:0.1.0 rules --window 5m
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: the project and every dependency as wheels ---------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter/ exporter/
RUN pip wheel --wheel-dir /wheels .

# --- runtime: the wheels installed without an index, then pip itself removed ----------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels summary-exporter \
    && pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 10001 exporter \
    && useradd --system --uid 10001 --gid exporter --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin exporter
COPY exporter/catalog.yaml /etc/summary-exporter/catalog.yaml
ENV EXPORTER_HOST=0.0.0.0 \
    EXPORTER_PORT=9199 \
    EXPORTER_CATALOG=/etc/summary-exporter/catalog.yaml
USER 10001:10001

# --- demo-gateway: the simulated gateway of demo/, for docker-compose.yml -------------------
FROM runtime AS demo-gateway
WORKDIR /opt/demo-gateway
COPY demo/__init__.py demo/gateway.py demo/metrics.py demo/simulation.py demo/
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:8000/metrics', timeout=4)"]
ENTRYPOINT ["python", "-m", "demo.gateway"]
CMD ["--host", "0.0.0.0", "--port", "8000"]

# --- exporter (default target) ----------------------------------------------------------------
FROM runtime AS exporter
LABEL org.opencontainers.image.title="summary-exporter" \
      org.opencontainers.image.description="A five-domain summary of an AI API gateway, computed by PromQL." \
      org.opencontainers.image.licenses="Apache-2.0"
EXPOSE 9199
# /healthz answers 200 while the process runs, whatever the upstream does.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/healthz' % os.environ.get('EXPORTER_PORT', '9199'), timeout=4)"]
ENTRYPOINT ["summary-exporter"]
CMD ["serve"]
