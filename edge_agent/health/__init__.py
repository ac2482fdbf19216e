"""Camera health and agent alerts: conditions, debounced alerts with start/end, alert JSON."""
