"""The MQTT broker connection the box and the control room share (connection.py)."""
