"""Prometheus metrics of the publisher, read at scrape time from agent.publisher.status().

Only a publisher with a spool (MQTT) has them; with the local-folder sink they are absent.
Registered next to the camera metrics in the app's own registry (app.py).
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from edge_agent.metrics import PREFIX


class PublisherCollector(Collector):
    def __init__(self, agent: Any):
        self._agent = agent

    def collect(self):
        status = getattr(getattr(self._agent, "publisher", None), "status", None)
        if not callable(status):
            return
        quarantined = status().get("spool_quarantined")
        if quarantined is None:
            return
        yield CounterMetricFamily(
            f"{PREFIX}_spool_quarantined",
            "spool records found torn or corrupt, moved to <spool_dir>/bad/ and never sent",
            value=float(quarantined),
        )
