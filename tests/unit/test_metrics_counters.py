"""Every counter the pipeline counts is exported on /metrics with its meaning (one table: COUNTERS)."""

from __future__ import annotations

from edge_agent.metrics import AgentMetrics
from edge_agent.pipeline.stats import COUNTERS, CameraStats


def test_every_counted_counter_is_exported_with_its_help():
    stats = CameraStats("door")
    for i, name in enumerate(COUNTERS, start=1):
        stats.inc(name, i)
    text = AgentMetrics(lambda: {"door": stats}).render()[0].decode()
    for i, name in enumerate(COUNTERS, start=1):
        assert f'nightwatch_{name}_total{{camera="door"}} {float(i)}' in text, name
        assert f"# HELP nightwatch_{name}_total {COUNTERS[name]}" in text
    assert "snapshots_limited" in COUNTERS  # counted by the camera loop's rate limit
