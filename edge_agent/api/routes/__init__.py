"""One router per resource: auth, config, cameras, enhance, health (+ /metrics), page."""
