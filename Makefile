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

# Benchmarks, not part of `make test`: every figure a ratio measured side by side in one run
# (docs/benchmarks.md says how). `bench` writes docs/benchmarks.md in about 18 min;
# `bench-quick` is the regression guard (about 6 min): non-zero exit when a ratio misses its
# goal. They need prometheus, promtool and wrk (apt-get install prometheus wrk), `bench`
# valgrind too, and a venv with the package and its test extras (`make test` makes .venv).
BENCH_PYTHON ?= .venv/bin/python

bench:
	$(BENCH_PYTHON) -m benchmarks --output docs/benchmarks.md

bench-quick:
	$(BENCH_PYTHON) -m benchmarks --quick
