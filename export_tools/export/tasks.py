"""What each shipped task looks like from the outside: input/output names, shapes, value range.

One small table instead of per-task branches everywhere. The manifest I/O spec is written from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.config.schema import RATIO_RANGE
from edge_agent.inference.manifest import IOSpec

# architecture name (export_tools.archs.registry) -> task
ARCH_TASK = {
    "kind_enhancer": "low_light",
    "unet_enhancer": "low_light",
    "srgan_generator": "face_sr",
    "srgan_leftthomas": "face_sr",
    "repsr": "face_sr",
}


@dataclass(frozen=True)
class TaskSpec:
    task: str  # manifest task: "low_light" | "face_sr"
    model_name: str  # manifest key
    input_names: tuple[str, ...]
    output_name: str = "output"

    def io_spec(self, scale: int) -> tuple[list[IOSpec], list[IOSpec]]:
        image = IOSpec(name="image", shape=[1, 3, "H", "W"], layout="NCHW", color="RGB", range=[0.0, 1.0])
        inputs = [image]
        if "ratio" in self.input_names:
            inputs.append(IOSpec(name="ratio", shape=[1, 1], range=list(RATIO_RANGE)))
        out_hw = ["H", "W"] if scale == 1 else [f"{scale}*H", f"{scale}*W"]
        outputs = [IOSpec(name=self.output_name, shape=[1, 3, *out_hw], layout="NCHW", color="RGB",
                          range=[0.0, 1.0])]
        return inputs, outputs


TASKS: dict[str, TaskSpec] = {
    "low_light": TaskSpec(task="low_light", model_name="lowlight", input_names=("image", "ratio")),
    "face_sr": TaskSpec(task="face_sr", model_name="face_sr", input_names=("image",)),
}


def task_for_arch(arch: str) -> TaskSpec:
    try:
        return TASKS[ARCH_TASK[arch]]
    except KeyError:
        raise ValueError(
            f"architecture {arch!r} is not exportable; exportable: {', '.join(sorted(ARCH_TASK))}"
        ) from None
