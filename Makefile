.PHONY: test demo lint deploy-sync bench bench-quick

# The full test suite; installs Prometheus, VictoriaMetrics and the Python deps if missing.
test:
	bash scripts/test.sh

# A simulated gateway, a local Prometheus scraping it, and the exporter; Ctrl-C stops all three.
demo:
	bash scripts/demo.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

# After changing exporter/catalog.yaml: refresh the copies the deploy artifacts ship (the
# Kubernetes ConfigMap's catalog and the Prometheus recording rules); tests/deploy checks them.
deploy-sync:
	cp exporter/catalog.yaml deploy/kubernetes/catalog.yaml
	EXPORTER_CATALOG= .venv/bin/summary-exporter rules --window 5m \
		> deploy/prometheus/rules/summary-exporter.rules.yml
	EXPORTER_CATALOG= .venv/bin/summary-exporter rules --window 5m --prometheus-rule \
		> deploy/kubernetes/prometheusrule.yaml

# Benchmarks, not part of `make test`: refresh against the slowest query, queries reaching
# Prometheus against clients, memory and start-up, serving against a bare aiohttp app.
# `bench` writes docs/benchmarks.md (about 8 min); `bench-quick` is the regression guard (about
# 2 min): fewer series, shorter runs, exit 1 when a figure misses its goal. They need
# prometheus, promtool and wrk (apt-get install prometheus wrk) and the venv `make test` makes.
BENCH_PYTHON ?= .venv/bin/python

bench:
	$(BENCH_PYTHON) -m benchmarks --output docs/benchmarks.md

bench-quick:
	$(BENCH_PYTHON) -m benchmarks --quick
