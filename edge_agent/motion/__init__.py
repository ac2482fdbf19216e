"""Motion gate: cheap, debounced motion detection on a downscaled gray copy of each frame."""

from edge_agent.motion.gate import MotionGate, effective_threshold

__all__ = ["MotionGate", "effective_threshold"]
