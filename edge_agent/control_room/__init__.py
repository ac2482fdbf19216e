"""The control room: the second application, on the operators' side. ingest.py receives what the
boxes publish (MQTT), store.py keeps it (folder tree + SQLite index), queries.py reads it for the
console (console/, a FastAPI app and a static page), evidence.py exports and verifies one event.
Config: config.py (`edge-agent receive --config FILE`)."""
