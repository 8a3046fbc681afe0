"""Benchmarks of summary-exporter: refresh, load on Prometheus, memory and start-up, serving.

`python -m benchmarks` runs them and writes docs/benchmarks.md (`make bench`); `--quick` is
the short regression guard behind `make bench-quick`.
"""
