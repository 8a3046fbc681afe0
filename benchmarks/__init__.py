"""Benchmarks of summary-exporter: serving, refresh, load on Prometheus, memory and start.

`python -m benchmarks` runs them all and writes docs/benchmarks.md; `--quick` is the short
regression guard behind `make bench-quick`. Every figure is a ratio measured side by side in
one run, because the machines are shared and absolute numbers drift from run to run.
"""
