"""Prometheus metrics of the publisher, read at scrape time from agent.publisher.status().

Only a publisher with a spool (MQTT) has them; with the local-folder sink they are absent.
Registered next to the camera metrics in the app's own registry (app.py).
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edge_agent.metrics import PREFIX


class PublisherCollector(Collector):
    def __init__(self, agent: Any):
        self._agent = agent

    def collect(self):
        status = getattr(getattr(self._agent, "publisher", None), "status", None)
        if not callable(status):
            return
        st = status()
        if st.get("spool_quarantined") is None:
            return
        yield CounterMetricFamily(
            f"{PREFIX}_spool_quarantined",
            "spool records found torn or corrupt, moved to <spool_dir>/bad/ and never sent",
            value=float(st["spool_quarantined"]),
        )
        if st.get("spool_dropped") is not None:
            yield CounterMetricFamily(
                f"{PREFIX}_spool_dropped",
                "spool records dropped, oldest first, because the spool reached its size limit",
                value=float(st["spool_dropped"]),
            )
        for name, help_text in (("spool_records", "records waiting in the spool"),
                                ("spool_bytes", "bytes waiting in the spool")):
            if st.get(name) is not None:
                yield GaugeMetricFamily(f"{PREFIX}_{name}", help_text, value=float(st[name]))
