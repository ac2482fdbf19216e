"""OpenVINO IR: FP16-weight conversion and NNCF post-training INT8 on real calibration images."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

FP16_NAME = "openvino_fp16.xml"
INT8_NAME = "openvino_int8.xml"
PRESETS = ("mixed", "performance")
# activation ranges: "minmax" = global min/max over the calibration set (never clips what it saw;
# restoration nets pass the whole image range through), NNCF's default averages per-image ranges.
RANGES = ("minmax", "mean_minmax")


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
                  preset: str = "mixed", ranges: str = "minmax", ignored_names: Iterable[str] = (),
                  ignored_prefixes: Iterable[str] = (),
                  fast_bias_correction: bool = True) -> Path:
    """ONNX -> OpenVINO IR -> NNCF INT8 calibrated on `calib_feeds` (dicts keyed by input name)."""
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    if not calib_feeds:
        raise OpenVINOError("no calibration images: NNCF INT8 calibration needs real inputs")
    if preset not in PRESETS:
        raise OpenVINOError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if ranges not in RANGES:
        raise OpenVINOError(f"unknown activation ranges {ranges!r}; choose one of {', '.join(RANGES)}")
    advanced = AdvancedQuantizationParameters()
    if ranges == "minmax":
        advanced = AdvancedQuantizationParameters(
            activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)
    out_xml = Path(out_xml)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    model = ov.convert_model(str(onnx_path))
    prefixes = tuple(ignored_prefixes)
    names = list(ignored_names) + [op.get_friendly_name() for op in model.get_ops()
                                   if prefixes and op.get_friendly_name().startswith(prefixes)]
    quantized = nncf.quantize(
        model,
        nncf.Dataset(list(calib_feeds)),
        preset=nncf.QuantizationPreset.MIXED if preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(calib_feeds),
        fast_bias_correction=fast_bias_correction,
        ignored_scope=nncf.IgnoredScope(names=names, validate=False) if names else None,
        advanced_parameters=advanced,
    )
    ov.save_model(quantized, str(out_xml))
    return out_xml


def bin_path(xml: Path) -> Path:
    return Path(xml).with_suffix(".bin")
