"""Capture: OpenCV sources (URL, file, V4L2 device), the latest-frame slot and the capture thread."""

from edge_agent.capture.reader import CaptureThread
from edge_agent.capture.slot import LatestFrameSlot
from edge_agent.capture.source import SourceError, VideoSource, open_source

__all__ = ["CaptureThread", "LatestFrameSlot", "SourceError", "VideoSource", "open_source"]
