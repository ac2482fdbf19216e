"""Prometheus metrics fed from the per-camera CameraStats.

Counters are read from CameraStats.snapshot() at scrape time (a custom collector, so the hot path
pays nothing extra); stage latencies go into histograms through CameraStats.add_timing_listener.
Each AgentMetrics owns its registry, so several agents (or tests) never share global state.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edge_agent.pipeline.stats import COUNTERS, CameraStats
from edge_agent.records import ModelInfo

PREFIX = "nightwatch"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
StatsProvider = Callable[[], Mapping[str, CameraStats]]
ModelsProvider = Callable[[], Iterable[ModelInfo]]
AlertsProvider = Callable[[], Iterable[Mapping]]


class _StatsCollector(Collector):
    def __init__(self, stats: StatsProvider, models: ModelsProvider | None, site_alerts: AlertsProvider | None):
        self._stats = stats
        self._models = models
        self._site_alerts = site_alerts

    def collect(self):
        snaps = [s.snapshot() for s in self._stats().values()]
        for name in COUNTERS:
            fam = CounterMetricFamily(f"{PREFIX}_{name}", COUNTERS[name], labels=["camera"])
            for snap in snaps:
                fam.add_metric([snap["camera"]], float(snap.get(name, 0)))
            yield fam
        up = GaugeMetricFamily(
            f"{PREFIX}_camera_connected", "1 when the source is connected", labels=["camera"]
        )
        motion = GaugeMetricFamily(f"{PREFIX}_camera_motion", "1 while motion is ON", labels=["camera"])
        for snap in snaps:
            up.add_metric([snap["camera"]], 1.0 if snap.get("connected") else 0.0)
            motion.add_metric([snap["camera"]], 1.0 if snap.get("motion") else 0.0)
        yield up
        yield motion
        alerts = GaugeMetricFamily(
            f"{PREFIX}_alert_active",
            "1 while an alert is open (edge_agent/health; camera is empty for site-level alerts)",
            labels=["camera", "type", "severity"],
        )
        for snap in snaps:
            for a in snap.get("alerts") or ():
                alerts.add_metric([snap["camera"], a["type"], a["severity"]], 1.0)
        for a in self._site_alerts() if self._site_alerts else ():
            alerts.add_metric(["", a["type"], a["severity"]], 1.0)
        yield alerts
        info = GaugeMetricFamily(
            f"{PREFIX}_model_info",
            "loaded models and the backend that runs them (value is always 1)",
            labels=["model", "version", "backend", "precision"],
        )
        for m in self._models() if self._models else ():
            info.add_metric([m.name, m.version, m.backend, m.precision], 1.0)
        yield info


class AgentMetrics:
    """Metrics for one agent. Call attach() when cameras are (re)built; render() on scrape."""

    def __init__(
        self, stats: StatsProvider, models: ModelsProvider | None = None, site_alerts: AlertsProvider | None = None
    ):
        self.registry = CollectorRegistry(auto_describe=True)
        self._stats = stats
        self._lock = threading.Lock()
        self._attached: weakref.WeakSet[CameraStats] = weakref.WeakSet()
        self.registry.register(_StatsCollector(stats, models, site_alerts))
        self.stage_seconds = Histogram(
            f"{PREFIX}_stage_seconds",
            "time spent per pipeline stage",
            labelnames=["camera", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.attach()

    def _observe(self, camera: str, stage: str, ms: float) -> None:
        self.stage_seconds.labels(camera=camera, stage=stage).observe(max(0.0, ms) / 1000.0)

    def attach(self) -> None:
        """Register the latency listener on every CameraStats not seen before."""
        with self._lock:
            for st in self._stats().values():
                if st not in self._attached:
                    st.add_timing_listener(self._observe)
                    self._attached.add(st)

    def render(self) -> tuple[bytes, str]:
        self.attach()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
