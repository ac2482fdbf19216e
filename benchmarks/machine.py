"""Machine facts printed in every benchmark report."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def models_line(models: Path) -> str:
    """The models a run loaded: each manifest entry's name and version ("face_sr 2.0.0, ...")."""
    from edge_agent.inference.manifest import load_manifest

    entries = load_manifest(Path(models)).models
    return ", ".join(f"{name} {e.version}" for name, e in sorted(entries.items()))
