"""The worker on real (tiny) models: dark check -> low-light -> faces -> SR -> published event."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import skimage.data

from edge_agent.config.loader import parse_config
from edge_agent.enhance.face_sr import FaceSuperResolver
from edge_agent.enhance.faces import FaceDetector, crop_with_margin
from edge_agent.enhance.low_light import LowLightEnhancer
from edge_agent.inference.loader import load_model
from edge_agent.pipeline.jobs import EndJob, JobQueue
from edge_agent.pipeline.stats import CameraStats
from edge_agent.pipeline.worker import Stages, Worker
from edge_agent.publish.local import LocalDirectoryPublisher
from edge_agent.records import Frame, Job, MotionResult

CONFIG = """
site: lab
cameras:
  - name: cam
    source: {file: clip.avi}
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from fixtures.tiny_models import build_tiny_models

    d = build_tiny_models(tmp_path_factory.mktemp("tiny"))
    return load_model(d, "lowlight", "onnxruntime", "fp32"), load_model(d, "face_sr", "onnxruntime", "fp32")


def stages_for(models, low_light=None) -> Stages:
    low, sr = models
    return Stages(
        low_light=low_light or LowLightEnhancer(low),
        face_detector=FaceDetector,
        crop=crop_with_margin,
        face_sr=FaceSuperResolver(sr),
        models={"low_light": low.info, "face_sr": sr.info},
    )


def face_frame(gain: float) -> np.ndarray:
    """A 360x640 frame with the astronaut photo (a real face) in it, scaled in brightness."""
    canvas = np.full((360, 640, 3), 60, np.uint8)
    astro = cv2.resize(skimage.data.astronaut()[:, :, ::-1], (300, 300), interpolation=cv2.INTER_AREA)
    canvas[30:330, 170:470] = astro
    return np.clip(canvas.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def make_job(image: np.ndarray, seq: int = 1, phase: str = "new", event: str = "ev1") -> Job:
    frame = Frame(camera="cam", seq=seq, ts=1_700_000_000.0 + seq, image=image)
    motion = MotionResult(active=True, started=phase == "new", ended=False,
                          boxes=[(0.25, 0.05, 0.5, 0.9)], changed_fraction=0.2)
    return Job(event_id=event, camera="cam", frame=frame, motion=motion, phase=phase)


class Holder:
    def __init__(self, text: str = CONFIG):
        self.cfg = parse_config(text)

    def __call__(self):
        return self.cfg


def make_worker(tmp_path, stages, holder=None):
    stats = {"cam": CameraStats("cam")}
    pub = LocalDirectoryPublisher(tmp_path / "events")
    pub.start()
    seen = []
    w = Worker(JobQueue(4, stats), stages, pub, stats, holder or Holder(), seen.append)
    return w, stats["cam"], pub, seen


def test_dark_frame_is_enhanced_faces_found_and_super_resolved(tmp_path, models):
    w, st, pub, seen = make_worker(tmp_path, stages_for(models))
    dark = face_frame(0.2)
    event = w.handle(make_job(dark))
    assert event.phase == "new" and event.luma < 70
    assert event.stages == ["low_light", "face_detect", "face_sr"]
    assert event.enhanced is not None and event.enhanced.shape == dark.shape
    assert event.enhanced.mean() > dark.mean() * 1.5  # the tiny model brightens ~2x at ratio 5
    assert event.faces, "the astronaut's face was not found"
    face = event.faces[0]
    h, w = face.crop.shape[:2]
    f = min(1.0, 96 / max(h, w))  # faces.sr_max_input (default 96): larger crops are shrunk first
    assert face.sr.shape[:2] == (round(h * f) * 4, round(w * f) * 4)
    assert max(face.sr.shape[:2]) <= 96 * 4
    x, y, bw, bh = face.box
    assert 170 <= x + bw / 2 <= 470 and 30 <= y + bh / 2 <= 330
    assert {m.name for m in event.models} == {"lowlight", "face_sr"}
    assert set(event.stage_ms) >= {"low_light", "face_detect", "face_sr", "total"}
    assert st.get("enhanced") == 1 and st.get("faces") == len(event.faces) and st.get("faces_sr") >= 1
    assert st.get("events_published") == 1 and st.get("errors") == 0
    assert "low_light" in st.snapshot()["stage_ms_avg"]
    # the sink wrote it, with hashes that match the files
    doc_path = next((tmp_path / "events").rglob("event-new.json"))
    doc = json.loads(doc_path.read_text())
    assert doc["enhanced"] is True and doc["faces"][0]["super_resolved"] is True
    assert seen == [event]


def test_bright_frame_is_not_enhanced(tmp_path, models):
    w, st, _, _ = make_worker(tmp_path, stages_for(models))
    event = w.handle(make_job(face_frame(1.0)))
    assert event.luma > 70
    assert event.enhanced is None and "low_light" not in event.stages
    assert st.get("enhanced") == 0
    assert event.faces  # faces are still searched on the original


def test_a_crashing_model_is_counted_and_the_original_still_goes_out(tmp_path, models):
    # a real failure: the x4 SR network loaded as if it were the low-light model
    wrong = LowLightEnhancer(models[1])
    w, st, pub, _ = make_worker(tmp_path, stages_for(models, low_light=wrong))
    event = w.handle(make_job(face_frame(0.2)))
    assert event.enhanced is None and event.original is not None
    assert any(e.startswith("low_light:") for e in event.errors)
    assert st.get("errors") == 1 and st.get("events_published") == 1
    doc = json.loads(next((tmp_path / "events").rglob("event-new.json")).read_text())
    assert doc["enhanced"] is False and doc["errors"] and "original.jpg" in doc["images"]


def test_config_is_read_live_for_every_job(tmp_path, models):
    holder = Holder()
    w, st, _, _ = make_worker(tmp_path, stages_for(models), holder)
    assert w.handle(make_job(face_frame(0.2), 1)).enhanced is not None
    holder.cfg = parse_config(CONFIG + "    low_light: {luma_threshold: 5}\n    faces: {super_resolve: false}\n")
    e2 = w.handle(make_job(face_frame(0.2), 2, phase="update"))
    assert e2.phase == "update" and e2.enhanced is None
    assert e2.faces and all(f.sr is None for f in e2.faces) and "face_sr" not in e2.stages


def test_first_processed_frame_opens_the_event_and_end_follows(tmp_path, models):
    w, st, _, seen = make_worker(tmp_path, stages_for(models))
    # the 'new' frame was dropped while the worker was behind: the update opens the event
    e = w.handle(make_job(face_frame(1.0), 5, phase="update", event="ev9"))
    assert e.phase == "new"
    end = w.handle(EndJob("ev9", "cam", 0.0, 1_700_000_010.0, frame_seq=9))
    assert end.phase == "end" and end.started_at == e.started_at and end.frame_seq == 9
    # an event none of whose frames was processed publishes no end
    assert w.handle(EndJob("never", "cam", 0.0, 1.0)) is None
    assert [x.phase for x in seen] == ["new", "end"]
    assert len(list((tmp_path / "events" / "cam").rglob("event-end.json"))) == 1


def test_noisy_dark_face_crops_are_denoised_unless_turned_off(tmp_path, models):
    """faces.denoise on (the default) publishes a crop with less noise than the lifted cut;
    off publishes the lifted cut itself."""
    from edge_agent.enhance.crop_denoise import noise_sigma

    rng = np.random.default_rng(3)
    dark = face_frame(0.2)
    dark = np.clip(dark.astype(np.float32) + rng.normal(0, 3.0, dark.shape), 0, 255).round().astype(np.uint8)
    sigmas = {}
    for mode in ("true", "false"):
        text = CONFIG + "    faces:\n      denoise: " + mode + "\n"
        w, _st, _pub, _seen = make_worker(tmp_path / mode, stages_for(models), Holder(text))
        event = w.handle(make_job(dark, event=f"ev-{mode}"))
        assert event.faces, mode
        sigmas[mode] = noise_sigma(event.faces[0].crop)
    assert sigmas["false"] > 4.0  # the lift made the night noise larger
    assert sigmas["true"] < 0.75 * sigmas["false"]  # the estimate also sees the face's detail


def test_a_night_face_crop_averages_the_face_of_the_frames_before(tmp_path, models):
    """faces.fuse_frames (3 by default): the face found in a dark job's frame is found again in the
    moving parts of the two frames before it (the person walked 12 px per frame) and averaged; the
    published crop has less noise than the same job's crop with fusion off, and says so."""
    from edge_agent.config.enhance_schema import FacesConfig
    from edge_agent.enhance.crop_denoise import noise_sigma
    from edge_agent.enhance.face_fusion import recent_regions

    rng = np.random.default_rng(5)
    base = face_frame(0.2)

    def at(dx: int) -> np.ndarray:
        img = np.roll(base, dx, axis=1).astype(np.float32)  # the astronaut moved dx px to the right
        return np.clip(img + rng.normal(0, 3.0, img.shape), 0, 255).round().astype(np.uint8)

    frames = [at(-24), at(-12), at(0)]
    job = make_job(frames[2])
    ts = job.frame.ts
    box = [(0.2, 0.05, 0.55, 0.9)]
    job.recent = (*recent_regions(frames[0], box, ts - 0.2, FacesConfig()),
                  *recent_regions(frames[1], box, ts - 0.1, FacesConfig()))
    sigmas, fused = {}, {}
    for n in (3, 1):
        text = CONFIG + "    faces:\n      denoise: false\n      fuse_frames: " + str(n) + "\n"
        w, _st, _pub, _seen = make_worker(tmp_path / str(n), stages_for(models), Holder(text))
        event = w.handle(job)
        assert event.faces, n
        sigmas[n], fused[n] = noise_sigma(event.faces[0].crop), event.faces[0].fused
        doc = json.loads(next((tmp_path / str(n) / "events").rglob("event-new.json")).read_text())
        assert doc["faces"][0]["fused_frames"] == fused[n]
    assert fused == {3: 3, 1: 1}
    assert sigmas[3] < 0.75 * sigmas[1], sigmas  # three frames: about 1/sqrt(3) of the noise
    # a bright frame is not fused: its crop is published as cut
    bright = make_job(face_frame(1.0))
    bright.recent = job.recent
    w, _st, _pub, _seen = make_worker(tmp_path / "bright", stages_for(models))
    assert all(f.fused == 1 for f in w.handle(bright).faces)
