"""Which runtime each stage's model runs on, and why it matters: a box runs for months, and every
face crop has a new size. Real models, real runtimes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge_agent.builders import AUTO_BACKEND, build_stages
from edge_agent.config.schema import AgentConfig
from edge_agent.inference.loader import default_models_dir


def _cfg(backend: str) -> AgentConfig:
    return AgentConfig.model_validate({"cameras": [{"name": "cam", "source": {"file": "clip.mp4"}}],
                                       "models": {"dir": str(default_models_dir())},
                                       "inference": {"backend": backend}})


def test_auto_puts_every_stage_on_onnx_runtime_and_a_configured_backend_wins():
    pytest.importorskip("openvino")
    auto = build_stages(_cfg("auto"))
    assert auto.low_light.model.runner.backend == "onnxruntime"
    assert auto.face_sr.model.runner.backend == "onnxruntime"
    assert set(AUTO_BACKEND.values()) == {"onnxruntime"}
    ov = build_stages(_cfg("openvino"))
    assert ov.low_light.model.runner.backend == "openvino" and ov.face_sr.model.runner.backend == "openvino"
    # frames come in a few sizes, so OpenVINO compiles the low-light model once per size (static
    # shapes); face crops come in a new size every time and stay dynamic
    assert ov.low_light.model.runner.static_shapes > 0 and ov.face_sr.model.runner.static_shapes == 0


def test_the_opt_in_low_light_model_is_chosen_by_name():
    cfg = AgentConfig.model_validate({"cameras": [{"name": "cam", "source": {"file": "clip.mp4"}}],
                                      "models": {"dir": str(default_models_dir()), "low_light": "lowlight_hq"}})
    stages = build_stages(cfg)
    assert stages.low_light.model.info.name == "lowlight_hq"
    assert build_stages(_cfg("auto")).low_light.model.info.name == "lowlight"  # the default stays


GROWTH = r"""
import numpy as np, sys
from edge_agent.builders import build_stages
from edge_agent.config.schema import AgentConfig
from edge_agent.inference.loader import default_models_dir
from edge_agent.malloc_tuning import tune_malloc
tune_malloc()
cfg = AgentConfig.model_validate({"cameras": [{"name": "cam", "source": {"file": "clip.mp4"}}],
                                  "models": {"dir": str(default_models_dir())}})
sr = build_stages(cfg).face_sr
def rss():
    return int([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]) // 1024
rng = np.random.default_rng(0)
for _ in range(5):
    sr.upscale(rng.integers(0, 255, (60, 50, 3), dtype=np.uint8))
base = rss()
for h in range(24, 97, 6):          # 13 x 10 = 130 crop sizes, as faces come in
    for w in range(20, 80, 6):
        sr.upscale(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
print(rss() - base)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_face_crops_of_every_size_do_not_grow_the_agent():
    out = subprocess.run([sys.executable, "-c", GROWTH], capture_output=True, text=True, check=True)
    grew_mb = int(out.stdout.strip().splitlines()[-1])
    assert grew_mb <= 40  # OpenVINO, which kept state per input shape, grew by hundreds of MB here


FRAME_SIZES = r"""
import numpy as np
from edge_agent.builders import build_stages
from edge_agent.config.schema import AgentConfig
from edge_agent.inference.loader import default_models_dir
from edge_agent.malloc_tuning import release_free_memory, tune_malloc
tune_malloc()
cfg = AgentConfig.model_validate({"cameras": [{"name": "cam", "source": {"file": "clip.mp4"}}],
                                  "models": {"dir": str(default_models_dir())},
                                  "inference": {"backend": "openvino"}})
ll = build_stages(cfg).low_light
def rss():
    release_free_memory()
    return int([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]) // 1024
rng = np.random.default_rng(0)
# 12 camera frame sizes of about the same area (360x640), one after another
sizes = [(320 + 16 * i, 16 * round(360 * 640 / (320 + 16 * i) / 16)) for i in range(12)]
for h, w in sizes[:4]:
    ll.enhance(rng.integers(0, 40, (h, w, 3), dtype=np.uint8), 8.0)
base = rss()
for h, w in sizes[4:]:
    for _ in range(2):
        ll.enhance(rng.integers(0, 40, (h, w, 3), dtype=np.uint8), 8.0)
print(len(ll.model.runner.compiled_shapes), rss() - base)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_frames_of_many_sizes_keep_a_bounded_set_of_compiled_shapes():
    pytest.importorskip("openvino")
    out = subprocess.run([sys.executable, "-c", FRAME_SIZES], capture_output=True, text=True, check=True)
    kept, grew_mb = map(int, out.stdout.strip().splitlines()[-1].split())
    assert kept == 3
    assert grew_mb <= 60  # a released shape gives its memory back (30 MB here; keeping all 13 shapes: 180 MB)
