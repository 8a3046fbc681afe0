.PHONY: test demo lint

# The full test suite; installs Prometheus, VictoriaMetrics and the Python deps if missing.
test:
	bash scripts/test.sh

# A simulated gateway, a local Prometheus scraping it, and the exporter; Ctrl-C stops all three.
demo:
	bash scripts/demo.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy
