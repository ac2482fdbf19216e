"""malloc tuning: frames freed by many threads go back to the system (edge_agent/malloc_tuning.py).
Each case runs in its own interpreter: mallopt settings last for the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCENARIO = r"""
import json, sys, threading
import numpy as np
applied = {}
if sys.argv[1] == "tune":
    from edge_agent.malloc_tuning import release_free_memory, tune_malloc
    applied = tune_malloc()
def rss():
    return int([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]) // 1024
base = rss()
def camera(k):  # a capture thread: new 1080p frames, the last two kept, temporaries of drifting size
    keep = []
    for i in range(40):
        keep = (keep + [np.ones((1080, 1920, 3), np.uint8)])[-2:]
        tmp = np.ones((1080 - (i * 13 + k * 7) % 200, 1920, 3), np.uint8)
        del tmp
threads = [threading.Thread(target=camera, args=(k,)) for k in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
if sys.argv[1] == "tune":
    release_free_memory()
print(json.dumps({"applied": applied, "grew_mb": rss() - base}))
"""


def _run(mode: str, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", SCENARIO, mode], capture_output=True, text=True, check=True,
                         env={**{k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc")
def test_frames_freed_by_many_threads_go_back_to_the_system():
    # where a freed frame lands depends on how the threads interleave: three runs of each, averaged
    plain = [_run("plain") for _ in range(3)]
    tuned = [_run("tune") for _ in range(3)]
    assert all(t["applied"] == {"MALLOC_ARENA_MAX": 2} for t in tuned)
    mean_plain = sum(r["grew_mb"] for r in plain) / 3
    mean_tuned = sum(r["grew_mb"] for r in tuned) / 3
    assert mean_tuned <= 30  # 8 threads x 40 frames of 6 MB, all freed: (nearly) nothing kept
    assert mean_plain >= mean_tuned + 50  # glibc's defaults keep freed frames in a dozen arenas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc")
def test_an_operators_malloc_environment_wins():
    assert _run("tune", {"MALLOC_ARENA_MAX": "4"})["applied"] == {}
