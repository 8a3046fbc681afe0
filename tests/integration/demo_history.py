"""The demo gateway's traffic as a Prometheus scraping it would hold it.

The demo's simulation (`demo.simulation`, what the real gateway's production code writes, with
an incident cycle) is run in simulated time from a seed, and its registry is read every scrape
interval as its /metrics would answer then: the same samples, stamped with the scrape's time
and the target's `job` and `instance`, with `up` beside them. Backfilled into Prometheus, it
gives the status page real traffic to show at known instants, healthy and during an incident.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from demo.simulation import Incident, Simulation
from harness.servers import Sample

JOB = "gatewayz"
INSTANCE = "127.0.0.1:8000"
SCRAPE_SECONDS = 15
SEED = 7
# One incident in the history: it starts at half the cycle, 300 s in.
INCIDENT_EVERY = 600.0
INCIDENT_LENGTH = 60.0


@dataclass(frozen=True)
class History:
    samples: list[Sample]
    start: int
    incident: Incident  # in seconds after `start`

    def at(self, seconds: float) -> int:
        """The instant `seconds` of simulated time after the start, on a scrape."""
        return self.start + int(seconds // SCRAPE_SECONDS) * SCRAPE_SECONDS

    @property
    def during_the_incident(self) -> int:
        """A scrape after the failing provider's breaker opened and the billing outage lost a
        deduction, both within the last minute."""
        return self.at(self.incident.billing_outage[1] + SCRAPE_SECONDS)

    @property
    def healthy(self) -> int:
        """The last scrape before the incident."""
        return self.at(self.incident.start - 1)


def history(start: int, seconds: int) -> History:
    """`seconds` of the demo gateway from `start` (unix seconds), scraped every 15 s."""
    registry = CollectorRegistry()
    simulation = Simulation(registry, SEED, INCIDENT_EVERY, INCIDENT_LENGTH)
    target = {"job": JOB, "instance": INSTANCE}
    samples: list[Sample] = []
    for elapsed in range(0, seconds + 1, SCRAPE_SECONDS):
        simulation.advance_to(elapsed)
        simulation.refresh_redis_gauges()  # what its /metrics does before it answers
        at = start + elapsed
        samples.append(Sample("up", target, at, 1))
        samples += [
            Sample(sample.name, {**sample.labels, **target}, at, sample.value)
            for family in registry.collect()
            for sample in family.samples
        ]
    return History(samples, start, simulation.schedule.incident(0))
