"""docs/running.md's table of what applies live is the code's (config/live.py), row for row; the
command table in docs/mqtt.md names every command of config/commands.py with its schema bounds."""

from __future__ import annotations

import re

from edge_agent.config import commands, live


def test_running_md_lists_the_live_table_exactly(repo_root):
    text = (repo_root / "docs" / "running.md").read_text()
    block = text.split("<!-- live-table:", 1)[1]
    rows = re.findall(r"^\s*\| `([a-z_.*]+)`[^|]*\| (live|after a restart)", block, re.M)
    documented = {key: live.LIVE if how == "live" else live.RESTART for key, how in rows}
    assert documented == live.TABLE


def test_mqtt_md_lists_every_command_with_its_bounds(repo_root):
    text = (repo_root / "docs" / "mqtt.md").read_text()
    for cmd in commands.COMMANDS:
        row = re.search(rf"^\| `{cmd.key}` \| `{re.escape(cmd.config_key)}` \|(.*)$", text, re.M)
        assert row, cmd.key
        shape = commands.shape(cmd.key)
        if shape.kind == "number":
            assert f"{shape.min:g}..{shape.max:g}" in row.group(1), (cmd.key, row.group(1))
        for word in shape.words:
            assert f"`{word}`" in row.group(1)
        assert ("live" in row.group(1)) is (live.mode(f"cameras.door.{cmd.config_key}") == live.LIVE)
