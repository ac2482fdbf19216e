"""Per-camera enhancement settings: low-light enhancement and face detection / crops / SR.
Part of the agent's configuration (edge_agent.config.schema re-exports them); pure data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from edge_agent.config.base import StrictModel

# The KinD brightness ratio a camera may set and "auto" may choose (edge_agent/enhance/low_light.py).
# Night frames at 1-4 % exposure need 25-50 (the reference's own ratio on the held-out night frames
# of export_tools.data.camera_night.EVAL_SPEC); the camera-true training covers that range.
RATIO_RANGE = (1.0, 50.0)


class LowLightConfig(StrictModel):
    enabled: bool = True
    luma_threshold: float = Field(default=70.0, ge=0.0, le=255.0, description="enhance when mean luma is below")
    ratio: Annotated[float, Field(ge=RATIO_RANGE[0], le=RATIO_RANGE[1])] | Literal["auto"] = Field(
        default="auto",
        description="KinD brightness ratio (1..50, higher is brighter); auto: the ratio that brings the "
        "enhanced frame to a mean luma of 110, found from the frame's exposure and one small probe run "
        "(edge_agent/enhance/low_light.py)",
    )
    max_pixels: int = Field(
        default=300_000, ge=65_536, le=33_177_600,
        description="larger frames (the 1280x720 of model_pixels, 1080p, 4 MP) are enhanced in overlapping "
        "tiles of at most this many pixels, blended seamlessly: bounds the model's memory (its peak "
        "activations: the largest part of a box's memory after the decoders)",
    )
    model_pixels: int | None = Field(
        default=921_600, ge=65_536, le=33_177_600,
        description="larger frames are enhanced at this many pixels (1280x720 by default, aspect kept) and "
        "scaled back: a 1080p frame costs a quarter of full resolution. The enhanced frame is the "
        "operator's overview; face crops and their SR come from the full-resolution original. "
        "null: enhance at full resolution (in tiles of max_pixels)",
    )


class FacesConfig(StrictModel):
    enabled: bool = True
    detector: Literal["cnn", "lbp", "yunet"] = Field(
        default="cnn",
        description="cnn: the shipped CenterFace model (models/face_detector; LBP takes over if it cannot "
        "load); lbp: OpenCV's LBP cascade; yunet: an operator-supplied YuNet ONNX file",
    )
    yunet_model: Path | None = Field(default=None, description="YuNet ONNX file, when detector is yunet")
    score_threshold: float = Field(default=0.5, ge=0.05, le=0.99, description="cnn: lowest face score kept")
    max_regions: int = Field(
        default=4, ge=1, le=16, description="cnn: motion regions searched per frame (largest first)"
    )
    upscale: float = Field(
        default=1.5, ge=1.0, le=3.0,
        description="cnn: regions of small people (motion box under upscale_below_px tall) are searched "
        "upscaled by this, so 20-30 px faces are found",
    )
    upscale_below_px: int = Field(
        default=240, ge=0, le=4320, description="cnn: motion boxes shorter than this (px) are upscaled"
    )
    max_pixels: int = Field(
        default=1_000_000, ge=65_536, le=8_294_400,
        description="cnn: net input pixels per frame, all regions together (bounds the cost; the whole "
        "frame or the upscaling is scaled down to fit)",
    )
    crop_from: Literal["original", "enhanced"] = Field(
        default="original",
        description="when low-light enhancement ran, face crops (and their SR) are cut from: original: the "
        "dark original frame, lifted by one gamma curve to mid-grey (identified more often in "
        "benchmarks/night_yield.py); enhanced: the low-light-enhanced frame",
    )
    denoise: bool = Field(
        default=True,
        description="face crops are denoised (non-local means, strength from the crop's own noise "
        "estimate; a clean crop is left alone) before they are published and super-resolved",
    )
    fuse_frames: int = Field(
        default=3, ge=1, le=8,
        description="when low-light enhancement ran, a face crop cut from the dark original is the "
        "average of the face in this many frames (the job's and the ones just before it, aligned by "
        "template matching): night noise falls, the face stays (1: off)",
    )
    fuse_max_gap_s: float = Field(
        default=0.5, gt=0.0, le=5.0, description="earlier frames older than this (s) are not fused"
    )
    fuse_min_match: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="an earlier frame is fused only where the face matches this well (normalised "
        "cross-correlation of the blurred grey face)",
    )
    head_band: float = Field(
        default=0.5, ge=0.2, le=1.0,
        description="a person-shaped motion box (1.5x taller than wide) is searched only in this top "
        "fraction of its height, where the head is (1.0: the whole box)",
    )
    detect_on: Literal["original", "enhanced", "both"] = Field(
        default="original",
        description="which frame faces are searched in when low-light enhancement ran (both: boxes "
        "merged by IoU); the event records per face which frame found it",
    )
    min_size: int = Field(default=16, ge=8, le=1024, description="smallest face side in pixels")
    margin: float = Field(default=0.25, ge=0.0, le=1.0, description="added around each box, fraction of side")
    max_faces: int = Field(default=5, ge=0, le=50)
    super_resolve: bool = True
    sr_max_input: int = Field(
        default=96, ge=16, le=1024,
        description="face crops larger than this (px, long side) are shrunk to it before SR (bounds SR time)",
    )

    @model_validator(mode="after")
    def _yunet_needs_path(self) -> FacesConfig:
        if self.detector == "yunet" and self.yunet_model is None:
            raise ValueError("detector 'yunet' needs yunet_model (path to the ONNX file)")
        return self
