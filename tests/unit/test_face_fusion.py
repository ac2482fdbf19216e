"""Face fusion: a night face crop averaged with the same face, found again in the frames before."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from edge_agent.config.enhance_schema import FacesConfig
from edge_agent.enhance.face_fusion import REGION_GROW, fuse_crop, recent_regions
from edge_agent.enhance.faces import brighten_to_mid, crop_with_margin, search_rects
from edge_agent.records import RecentRegion

H, W = 240, 480
FACE = 40  # face side in the frames (px)


def clean_face() -> np.ndarray:
    """The astronaut's face, FACE x FACE, BGR uint8 (a real face: what the matching has to find)."""
    astro = skimage.data.astronaut()[:, :, ::-1]
    return cv2.resize(astro[20:220, 140:340], (FACE, FACE), interpolation=cv2.INTER_AREA)


def night_frames(xs: list[int], y: int = 90, sigma: float = 3.0, seed: int = 0):
    """Dark frames (a textured wall at 8 % exposure) with the face at x = xs[i] and fresh sensor
    noise in each; returns (noisy frames, the clean dark frames)."""
    rng = np.random.default_rng(seed)
    wall = cv2.resize(skimage.data.brick(), (W, H)).astype(np.float32)[:, :, None].repeat(3, 2)
    face = clean_face().astype(np.float32)
    noisy, clean = [], []
    for x in xs:
        img = wall.copy()
        img[y : y + FACE, x : x + FACE] = face
        img *= 0.08
        clean.append(img)
        noisy.append(np.clip(img + rng.normal(0, sigma, img.shape) + 0.5, 0, 255).astype(np.uint8))
    return noisy, clean


def regions_of(frame: np.ndarray, x: int, ts: float, y: int = 90) -> tuple:
    """The frame's moving parts as the camera loop keeps them, for a person-shaped motion box
    around the face (the head band of it)."""
    box = ((x - 20) / W, (y - 20) / H, (FACE + 40) / W, (FACE + 100) / H)
    return recent_regions(frame, [box], ts, FacesConfig())


def test_three_aligned_frames_cut_the_noise_and_keep_the_face():
    xs = [120, 140, 160]  # the person walks 20 px (half a face) per frame, 10 fps
    noisy, clean = night_frames(xs)
    recent = [*regions_of(noisy[0], xs[0], 0.0), *regions_of(noisy[1], xs[1], 0.1)]
    face_box = (xs[2], 90, FACE, FACE)
    crop, box = crop_with_margin(noisy[2], face_box, 0.25)
    fused, used = fuse_crop(noisy[2], box, face_box, 0.2, recent, max_frames=3, max_gap_s=0.5, min_match=0.5)
    assert used == 3
    x, y, w, h = box
    truth = clean[2][y : y + h, x : x + w]
    err_single = np.abs(crop.astype(np.float32) - truth)[10:-10, 10:-10].std()
    err_fused = np.abs(fused - truth)[10:-10, 10:-10].std()
    # sqrt(3) less noise would be 0.58x; a misaligned average would blur the face and add error
    assert err_fused < 0.7 * err_single, (err_fused, err_single)
    # the fused face still matches its clean self far better than a one-pixel shift of it does
    f0 = (10, 10)
    inner = fused[f0[1] : f0[1] + FACE, f0[0] : f0[0] + FACE]
    assert np.abs(inner - clean[2][90 : 90 + FACE, 160 : 160 + FACE]).mean() < \
        np.abs(inner - clean[2][90 : 90 + FACE, 161 : 161 + FACE]).mean()


def test_frames_without_the_face_too_old_or_at_the_edge_are_left_out():
    xs = [120, 140, 160]
    noisy, _ = night_frames(xs, seed=1)
    face_box = (xs[2], 90, FACE, FACE)
    _, box = crop_with_margin(noisy[2], face_box, 0.25)
    args = dict(max_frames=3, max_gap_s=0.5, min_match=0.5)
    # an earlier frame where the face is not (the wall alone): no match above min_match
    empty, _ = night_frames([400], seed=2)
    empty[0][90 : 90 + FACE, 400 : 400 + FACE] = empty[0][10 : 10 + FACE, 10 : 10 + FACE]
    far = regions_of(empty[0], 140, 0.1)
    assert fuse_crop(noisy[2], box, face_box, 0.2, far, **args)[1] == 1
    # too old (0.7 s before, max_gap_s 0.5) and from the future: not used
    old = regions_of(noisy[1], xs[1], 0.2 - 0.7)
    late = regions_of(noisy[1], xs[1], 0.3)
    assert fuse_crop(noisy[2], box, face_box, 0.2, [*old, *late], **args)[1] == 1
    # a region that holds the face but not the whole crop box around it: not used
    x1 = xs[1]
    tight = RecentRegion(ts=0.1, x=x1 - 5, y=85, image=noisy[1][85:135, x1 - 5 : x1 + 45].copy())  # 50 px < 60
    assert fuse_crop(noisy[2], box, face_box, 0.2, [tight], **args)[1] == 1
    # two regions of one earlier frame that both hold the face count as one frame
    twice = [*regions_of(noisy[1], xs[1], 0.1), *regions_of(noisy[1], xs[1], 0.1)]
    assert fuse_crop(noisy[2], box, face_box, 0.2, twice, **args)[1] == 2
    # max_frames bounds the average, newest first; fuse_frames 1 is off
    recent = [*regions_of(noisy[0], xs[0], 0.0), *regions_of(noisy[1], xs[1], 0.1)]
    assert fuse_crop(noisy[2], box, face_box, 0.2, recent, **{**args, "max_frames": 2})[1] == 2
    single, used = fuse_crop(noisy[2], box, face_box, 0.2, recent, **{**args, "max_frames": 1})
    x, y, w, h = box
    assert used == 1 and np.array_equal(single, noisy[2][y : y + h, x : x + w].astype(np.float32))


def test_recent_regions_are_grown_copies_of_where_faces_are_searched():
    frame = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    cfg = FacesConfig()
    assert recent_regions(frame, [], 1.0, cfg) == ()
    person = (0.25, 0.2, 0.1, 0.6)  # 48 x 144 px: person-shaped, only its head band is kept
    blob = (0.7, 0.5, 0.1, 0.2)  # 48 x 48 px: kept whole
    regions = recent_regions(frame, [person, blob], 1.0, cfg)
    rects = sorted(search_rects([person, blob], W, H, cfg.min_size, cfg.head_band),
                   key=lambda r: (r[2] - r[0]) * (r[3] - r[1]), reverse=True)
    assert len(regions) == len(rects) == 2
    for r, (x0, y0, x1, y1) in zip(regions, rects, strict=True):
        gx, gy = int((x1 - x0) * REGION_GROW), int((y1 - y0) * REGION_GROW)
        assert (r.x, r.y, r.ts) == (max(x0 - gx, 0), max(y0 - gy, 0), 1.0)
        assert r.image.shape[:2] == (min(y1 + gy, H) - r.y, min(x1 + gx, W) - r.x)
        assert np.array_equal(r.image, frame[r.y : r.y + r.image.shape[0], r.x : r.x + r.image.shape[1]])
    head = next(r for r in regions if r.x < W // 2)
    assert head.image.shape[0] < 0.8 * 144  # the head band, not the whole person
    assert len(recent_regions(frame, [person, blob], 1.0, FacesConfig(max_regions=1))) == 1
    frame[:] = 0
    assert all(r.image.any() for r in regions), "regions must be copies: the capture may reuse the frame"


@pytest.mark.parametrize("mean", [20.0, 200.0])
def test_brighten_to_mid_lifts_a_float_crop_like_the_uint8_one(mean):
    rng = np.random.default_rng(3)
    u8 = np.clip(rng.normal(mean, 6, (32, 32, 3)), 0, 255).astype(np.uint8)
    a = brighten_to_mid(u8).astype(int)
    b = brighten_to_mid(u8.astype(np.float32))
    assert b.dtype == np.uint8 and np.abs(a - b).max() <= 1
