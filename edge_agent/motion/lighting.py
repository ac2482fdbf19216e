"""Is a changed region light on the scene, or something in front of it? Two tests on the small frame.

Both look at one changed region (a contour of the dilated change mask) of the blurred small frame f
against the running background b:

- texture (relit_texture): a light sweeping over the scene scales the background's own texture,
  f = g(x) b with a smooth g; an object in front of it does not. Decided only where the background
  has texture above the noise.
- soft edge (soft_edge): a light fades out gradually (a headlight beam, a pool of lamplight, the
  ghost a beam leaves in the background after it passed): just outside the region the frame still
  differs from the background the same way, a little less than the threshold. An object ends at its
  silhouette: just outside it, the difference is noise around zero. soft_edge is the mean signed
  difference in a ring of unchanged pixels around the region, in units of the threshold, signed so
  that it is positive when the ring changed the same way as the region.

Measured on the night-yield clips (benchmarks/night_yield.py): rings around people stay near 0
(median -0.03..0.1), rings around headlight beams and their ghosts 0.1-1.8.
"""

from __future__ import annotations

import cv2
import numpy as np

RELIT_RATIO = 0.5  # a change the "light" model explains this much better is re-lit background
RELIT_BOX = 7  # box filter size of the smooth light / overlay fields, in small-frame pixels
RELIT_TEXTURE = 2.0  # decided only where the background's texture std exceeds this many noise sigmas
SOFT_RING = 4  # width of the ring of unchanged pixels around a region, small-frame pixels
SOFT_EDGE = 0.15  # a ring this changed (fraction of the threshold, same sign as the region) is light
GROW = 2  # the motion gate's dilation of the change mask (iterations of a 3x3 kernel)
HARD_SHARE = 0.1  # a region is light when parts judged solid hold less than this share of its change
MIN_PART = 16  # parts of a region smaller than this many changed pixels are not judged
GAIN_DEADBAND = 0.03  # global brightness changes smaller than 3 % are not compensated
GAIN_MAX = 2.0  # larger gradual changes end in a re-baseline anyway
GAIN_JUMP = 1.5  # a global change this large from one frame to the next is a lighting jump
GAIN_STEP = 6  # the median gain samples every 6th pixel of every 6th row of the small frame
_RING_KERNEL = np.ones((2 * (GROW + SOFT_RING) + 1,) * 2, np.uint8)  # one pass = GROW + SOFT_RING 3x3 passes


def relit_texture(f: np.ndarray, b: np.ndarray, mask: np.ndarray, noise: float) -> bool:
    """True when the change of f against b inside mask (all the region's bounding box, float32) is
    b's texture scaled by a smooth light: the light model f = g b leaves less than RELIT_RATIO of
    the residual of the overlay model f = b + c (g and c box-filtered from the data)."""
    if cv2.countNonZero(mask) < MIN_PART:
        return False
    if float(cv2.meanStdDev(b, mask=mask)[1][0, 0]) < RELIT_TEXTURE * noise:
        return False  # no texture above the noise: the two models cannot be told apart
    k = (RELIT_BOX, RELIT_BOX)
    d = f - b
    light = cv2.blur(cv2.divide(f, cv2.max(b, 1.0)), k)
    cv2.multiply(light, b, dst=light)
    cv2.subtract(f, light, dst=light)  # residual of the light model
    over = cv2.subtract(d, cv2.blur(d, k))  # residual of the overlay model
    return cv2.norm(light, cv2.NORM_L2SQR, mask) < RELIT_RATIO * cv2.norm(over, cv2.NORM_L2SQR, mask)


def soft_edge(d: np.ndarray, grown: np.ndarray, part: np.ndarray, threshold: float,
              sign: float) -> float | None:
    """The ring measure of the module docstring for one part of a region: the pixels of one sign
    of change (part, uint8 255; sign +1 brighter, -1 darker). d: float32 frame - background of the
    same box; grown: the dilated change mask of both signs (the ring is outside it). None when the
    part has no ring (it fills its box, e.g. the whole frame)."""
    outer = cv2.dilate(part, _RING_KERNEL)
    ring = cv2.bitwise_and(outer, cv2.bitwise_not(grown))
    if cv2.countNonZero(ring) < 8:
        return None
    return sign * cv2.mean(d, ring)[0] / max(threshold, 1.0)


def is_light(f: np.ndarray, b: np.ndarray, changed: np.ndarray, grown: np.ndarray, region: np.ndarray,
             threshold: float, noise: float) -> bool:
    """True when the change in region (a filled contour of grown, uint8 255) is light on the scene.
    f, b: float32 frame and background of the region's box (with a margin of GROW + SOFT_RING + 1
    pixels where the frame allows); changed, grown: the change mask and its dilation, same box.
    Each sign of change is judged on its own (a beam brightens where it arrives and, once the
    background took its look, darkens where it left) by its soft edge; the region is light when
    the parts that are not soft hold under HARD_SHARE of its change, or, failing that, when the
    texture test says so for the whole region."""
    d = f - b
    inside = cv2.bitwise_and(changed, region)
    brighter = cv2.bitwise_and(inside, cv2.compare(d, 0.0, cv2.CMP_GT))
    darker = cv2.subtract(inside, brighter)
    light = hard = 0
    for sign, part in ((1.0, brighter), (-1.0, darker)):
        n = cv2.countNonZero(part)
        if n < MIN_PART:
            continue
        soft = soft_edge(d, grown, part, threshold, sign)
        if soft is None:
            continue  # enclosed by change of the other sign: nothing to judge it by
        if soft >= SOFT_EDGE:
            light += n
        else:
            hard += n
    if light > 0 and hard < HARD_SHARE * (light + hard):
        return True
    x, y, w, h = cv2.boundingRect(inside)  # the texture test on the region's own box, not the margin
    box = (slice(y, y + h), slice(x, x + w))
    return relit_texture(f[box], b[box], inside[box], noise)


def global_gain(blurred: np.ndarray, bg: np.ndarray, keep: np.ndarray | None) -> float:
    """Global brightness of the frame relative to the background (1.0 when within GAIN_DEADBAND):
    the median of frame / background over a grid of pixels, so a local light (a beam covering a
    third of it) or a person does not move it, while the camera's gain (auto exposure, AGC) does."""
    frame_mean, bg_mean = cv2.mean(blurred, keep)[0], cv2.mean(bg, keep)[0]
    if frame_mean < 1.0 or bg_mean < 1.0:
        return 1.0  # a black picture (lens covered, camera starting): no ratio to speak of
    if abs(frame_mean / bg_mean - 1.0) < GAIN_DEADBAND:
        return 1.0  # the usual case, a steady picture: the median is not worth its cost
    size = (max(1, blurred.shape[1] // GAIN_STEP), max(1, blurred.shape[0] // GAIN_STEP))
    f = cv2.resize(blurred, size, interpolation=cv2.INTER_NEAREST).astype(np.float32)
    ratio = f / cv2.max(cv2.resize(bg, size, interpolation=cv2.INTER_NEAREST), 1.0)
    if keep is not None:
        ratio = ratio[cv2.resize(keep, size, interpolation=cv2.INTER_NEAREST) > 0]
    ratio = ratio.ravel()
    if ratio.size < 16:
        return 1.0
    gain = float(np.partition(ratio, ratio.size // 2)[ratio.size // 2])  # the median (np.median costs 8x)
    gain = min(GAIN_MAX, max(1.0 / GAIN_MAX, gain))
    return 1.0 if abs(gain - 1.0) < GAIN_DEADBAND else gain


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two (x, y, w, h) boxes overlap."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
