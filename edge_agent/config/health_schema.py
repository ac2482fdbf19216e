"""The per-camera health section of the config (part of schema.AgentConfig, re-exported there)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge_agent.config.base import StrictModel

HEALTH_ALERT_TYPES = ("stream_lost", "frozen", "covered", "moved", "defocused", "day_night", "capture_behind")


class HealthConfig(StrictModel):
    """Per-camera health alerts (see docs/alerts.md). Times in seconds; ratios are fractions of the
    learned baseline of this camera's own view."""

    enabled: bool = True
    ignore: list[Literal[HEALTH_ALERT_TYPES]] = Field(  # type: ignore[valid-type]
        default_factory=list, description="alert types never raised for this camera"
    )
    start_after_s: float = Field(default=5.0, ge=0.0, le=3600.0, description="a condition holds this long to start")
    end_after_s: float = Field(default=10.0, ge=0.0, le=3600.0, description="clear this long to end")
    stream_lost_after_s: float = Field(default=10.0, ge=0.0, le=3600.0, description="no stream this long")
    stream_back_after_s: float = Field(default=2.0, ge=0.0, le=3600.0, description="stream back this long")
    frame_timeout_s: float = Field(default=5.0, gt=0.0, le=3600.0, description="no frame this long = lost")
    frozen_after_s: float = Field(default=10.0, ge=0.0, le=3600.0, description="identical frames this long")
    frozen_max_diff: float = Field(
        default=0.5, ge=0.0, le=50.0, description="mean abs difference (gray levels) that counts as identical"
    )
    learn_s: float = Field(default=10.0, ge=0.0, le=3600.0, description="baseline learning after start/switch")
    baseline_adapt_s: float = Field(
        default=600.0, ge=1.0, le=86400.0, description="time constant of the slowly adapting baselines"
    )
    cover_contrast_ratio: float = Field(
        default=0.3, gt=0.0, lt=1.0, description="covered when contrast falls below this fraction of baseline"
    )
    cover_min_contrast: float = Field(
        default=2.0, ge=0.0, le=50.0, description="covered when contrast (gray std) falls below this at all"
    )
    defocus_ratio: float = Field(
        default=0.4, gt=0.0, lt=1.0, description="defocused when sharpness falls below this fraction of baseline"
    )
    moved_min_match: float = Field(
        default=0.5, ge=-1.0, lt=1.0, description="moved when the view's correlation with the reference is below"
    )
    moved_accept_s: float = Field(
        default=900.0, ge=1.0, le=86400.0, description="a moved view is adopted as the new reference after"
    )
    scene_check_interval_s: float = Field(default=1.0, ge=0.0, le=60.0, description="rate of the scene match")
    ir_gray_saturation: float = Field(
        default=3.0, ge=0.0, le=255.0, description="colour saturation below which the image is IR/gray"
    )
    ir_color_saturation: float = Field(
        default=8.0, ge=0.0, le=255.0, description="colour saturation above which the image is in colour"
    )
    ir_luma_jump: float = Field(
        default=10.0, ge=0.0, le=255.0, description="luma rise (gray levels) that comes with a switch to IR"
    )
    max_drop_fraction: float = Field(
        default=0.5, gt=0.0, le=1.0, description="capture falling behind: dropped share of frames read"
    )
    drop_window_s: float = Field(default=30.0, ge=1.0, le=3600.0, description="window for the drop share")
    snapshot_width: int = Field(default=320, ge=0, le=1920, description="alert snapshot width (0 = none)")

    @model_validator(mode="after")
    def _saturation_order(self) -> HealthConfig:
        if self.ir_color_saturation <= self.ir_gray_saturation:
            raise ValueError("ir_color_saturation must be above ir_gray_saturation")
        return self
