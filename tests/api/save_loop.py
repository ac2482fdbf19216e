"""Saves configs through ConfigStore in a tight loop until killed (used by test_store.py).

Usage: python save_loop.py CONFIG_PATH   -- prints "ready" once, then saves forever.
Alternate configs differ in size (no masks, or 16 masks of 64 points on the first camera) so that a
kill can land mid-write of the overlay (the camera list belongs to the base and cannot change).
"""

from __future__ import annotations

import sys

from edge_agent.config.loader import load_config
from edge_agent.config.schema import Polygon
from edge_agent.config.store import ConfigStore


def main(path: str) -> None:
    store = ConfigStore(path)
    base = load_config(path)
    cam = base.cameras[0]
    masks = [Polygon(points=[[k / 64, (i + 1) / 17] for k in range(64)]) for i in range(16)]
    many = base.model_copy(
        update={"cameras": [cam.model_copy(update={"motion": cam.motion.model_copy(update={"masks": masks})})]
                + base.cameras[1:]}
    )
    print("ready", flush=True)
    i = int(base.site[1:]) + 1 if base.site[1:].isdigit() else 0  # go on counting across kills
    while True:
        cfg = many if i % 2 else base
        store.save(cfg.model_copy(update={"site": f"s{i}"}))
        i += 1


if __name__ == "__main__":
    main(sys.argv[1])
