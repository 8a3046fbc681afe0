"""Processes for the tests, the benchmarks and the soak run, not part of the product.

`harness.servers` starts child processes (real Prometheus, VictoriaMetrics, the exporter)
on 127.0.0.1, waits for them within bounds and stops each by its own PID;
`harness.hostile_upstream` is an upstream that answers as a hostile or broken server would,
and `harness.connection_flood` a process holding half-open connections to the exporter.
"""
