"""OpenVINO IR: FP16-weight conversion and NNCF post-training INT8 on real calibration images."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

FP16_NAME = "openvino_fp16.xml"
INT8_NAME = "openvino_int8.xml"
PRESETS = ("mixed", "performance")


class OpenVINOError(RuntimeError):
    pass


def convert_fp16(onnx_path: Path, out_xml: Path) -> Path:
    """ONNX -> OpenVINO IR with weights stored as FP16 (out_xml + its .bin)."""
    import openvino as ov

    out_xml = Path(out_xml)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    model = ov.convert_model(str(onnx_path))
    ov.save_model(model, str(out_xml), compress_to_fp16=True)
    return out_xml


def quantize_int8(onnx_path: Path, out_xml: Path, calib_feeds: list[dict[str, np.ndarray]], *,
                  preset: str = "mixed", ignored_names: Iterable[str] = (), fast_bias_correction: bool = True
                  ) -> Path:
    """ONNX -> OpenVINO IR -> NNCF INT8 calibrated on `calib_feeds` (dicts keyed by input name)."""
    import nncf
    import openvino as ov

    if not calib_feeds:
        raise OpenVINOError("no calibration images: NNCF INT8 calibration needs real inputs")
    if preset not in PRESETS:
        raise OpenVINOError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    out_xml = Path(out_xml)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    model = ov.convert_model(str(onnx_path))
    names = list(ignored_names)
    quantized = nncf.quantize(
        model,
        nncf.Dataset(list(calib_feeds)),
        preset=nncf.QuantizationPreset.MIXED if preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(calib_feeds),
        fast_bias_correction=fast_bias_correction,
        ignored_scope=nncf.IgnoredScope(names=names, validate=False) if names else None,
    )
    ov.save_model(quantized, str(out_xml))
    return out_xml


def bin_path(xml: Path) -> Path:
    return Path(xml).with_suffix(".bin")
